//! What a decoder holds in memory (issue 19): a small multiple of its record
//! limit, however long the input. Its own test binary with a single test, so
//! that the process-wide allocation counter sees no other test's work.

mod support;

use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sluice_domain::format::{CsvDialect, RecordFormat};
use std::alloc::System;
use support::decoding::{count, split};
use support::inputs::{cuts, tokens};

#[global_allocator]
static GLOBAL: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The most bytes `f` held at once, beyond what was allocated before it.
fn peak_of(f: impl FnOnce()) -> usize {
    GLOBAL.reset_peak_memory();
    f();
    GLOBAL.get_peak_memory()
}

#[test]
fn memory_stays_bounded_by_the_record_limit_not_the_input() {
    // The counter itself sees a whole-line copy, so the bound below can fail.
    let long = vec![b'x'; 1 << 20];
    let held = peak_of(|| {
        let _ = count(RecordFormat::Jsonl, 2 << 20, &[&long]);
    });
    assert!(held >= 1 << 20, "the counter sees a one-line copy: {held}");

    let strategy = (tokens(), 16usize..256, any::<bool>(), cuts());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    let result = runner.run(&strategy, |(unit, max, csv, cuts)| {
        let data: Vec<u8> = unit.iter().copied().cycle().take(64 * 1024).collect();
        let format = if csv {
            RecordFormat::Csv(CsvDialect::default())
        } else {
            RecordFormat::Jsonl
        };
        let chunks = split(&data, &cuts);
        let mut records = 0;
        let peak = peak_of(|| records = count(format, max, &chunks));
        // Each byte of a record may end a field (8 bytes) besides its copies
        // in the field and raw buffers, and vectors grow by doubling.
        let bound = 2 * (8 + 3) * (max + 1) + 1024;
        prop_assert!(
            peak <= bound,
            "held {peak} bytes, limit {max}, bound {bound}, {records} records"
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
