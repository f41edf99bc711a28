//! Row validation on any bytes: the first byte chooses CSV (positional) or
//! JSON Lines, the rest is decoded and every record checked against a schema
//! with a column of every type and rule. A row is valid exactly when it
//! gives no error, every valid row lands in the batch with every value, every
//! error names its own row, and a value the checks accept is accepted again
//! as it was stored (normalising is idempotent).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sluice_domain::format::{Advance, CsvDialect, Decoder, RecordBody, RecordFormat};
use sluice_domain::schema::{ColumnType, Schema};
use sluice_domain::validation::{CompiledSchema, FieldMapping, ValidBatch, check_type};

/// The schema and its compiled form, built once (patterns compile slowly).
static SCHEMA: LazyLock<Option<(Schema, CompiledSchema)>> = LazyLock::new(|| {
    let schema = schema()?;
    let compiled = CompiledSchema::new(&schema).ok()?;
    Some((schema, compiled))
});

fn schema() -> Option<Schema> {
    serde_json::from_value(serde_json::json!({"columns": [
        {"name": "s", "type": "string", "maxLength": 5},
        {"name": "i", "type": "integer", "required": true},
        {"name": "n", "type": "number"},
        {"name": "b", "type": "boolean"},
        {"name": "d", "type": "date"},
        {"name": "t", "type": "timestamp"},
        {"name": "e", "type": "email"},
        {"name": "u", "type": "uuid"},
        {"name": "j", "type": "json"},
        {"name": "p", "type": "string", "pattern": "^[a-z]+[0-9]?$"},
        {"name": "a", "type": "string", "allowedValues": ["x", "é"]}
    ]}))
    .ok()
}

fuzz_target!(|input: &[u8]| {
    let Some((&how, data)) = input.split_first() else {
        return;
    };
    let Some((schema, compiled)) = SCHEMA.as_ref() else {
        panic!("the fuzz schema is valid");
    };
    let (format, mapping) = if how % 2 == 0 {
        (
            RecordFormat::Csv(CsvDialect::default()),
            FieldMapping::positional(schema),
        )
    } else {
        (RecordFormat::Jsonl, FieldMapping::by_name(schema))
    };
    let mut batch = ValidBatch::new(compiled.width());
    let mut errors = Vec::new();
    let mut valid = 0;
    let mut decoder = Decoder::new(format, 0, 1 << 16);
    let mut input = data;
    let mut row = 0;
    loop {
        match decoder.advance(&mut input, true) {
            Advance::Record => {
                row += 1;
                let record = decoder.record();
                if let RecordBody::Fields(fields) = record.body {
                    for value in fields.iter().filter_map(|f| std::str::from_utf8(f).ok()) {
                        for t in ColumnType::ALL {
                            if let Ok(normal) = check_type(t, value) {
                                let again = check_type(t, &normal).map(|n| n.into_owned());
                                assert_eq!(again.as_deref(), Ok(&*normal), "{t:?} {value:?}");
                            }
                        }
                    }
                }
                let before = errors.len();
                let ok = compiled.check_record(row, record.body, &mapping, &mut batch, &mut errors);
                assert_eq!(ok, errors.len() == before, "valid exactly when no error");
                assert!(
                    errors[before..].iter().all(|e| e.row == row),
                    "errors name their row"
                );
                valid += usize::from(ok);
            }
            Advance::NeedInput => panic!("NeedInput after the end of input"),
            Advance::End => break,
        }
    }
    assert_eq!(batch.len(), valid, "every valid row is in the batch");
    for (r, values) in batch.rows() {
        assert_eq!(
            values.iter().count(),
            schema.columns.len(),
            "row {r} holds every column"
        );
    }
});
