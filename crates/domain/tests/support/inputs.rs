//! Proptest strategies for decoder inputs.

#![allow(dead_code)]

use proptest::prelude::*;
use sluice_domain::format::CsvDialect;

/// Bytes that steer a decoder's state machine, mixed with ordinary ones.
pub fn tokens() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        &b"a"[..],
        b"bc",
        b"1234",
        b",",
        b";",
        b"\t",
        b"\"",
        b"'",
        b"\"\"",
        b"\n",
        b"\r",
        b"\r\n",
        b"{\"id\": 1}",
        b"[",
        b"}",
        b"\0",
        b"\xff",
        "é".as_bytes(),
        b"\xEF\xBB\xBF",
        b" ",
    ]);
    prop::collection::vec(token, 0..200).prop_map(|ts| ts.concat())
}

/// Any bytes at all, or bytes made of the tokens above.
pub fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..600), tokens()]
}

pub fn dialect() -> impl Strategy<Value = CsvDialect> {
    prop::sample::select(vec![
        (b',', b'"'),
        (b';', b'\''),
        (b'\t', b'"'),
        (b'|', b'\''),
    ])
    .prop_map(|(delimiter, quote)| CsvDialect { delimiter, quote })
}

/// The record limit: small ones make every input hit it.
pub fn limit() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(sluice_domain::format::DEFAULT_MAX_RECORD_BYTES),
        1usize..48
    ]
}

pub fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..12)
}
