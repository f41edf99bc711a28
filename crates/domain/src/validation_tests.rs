use super::*;
use crate::format::FieldsRef;
use crate::schema::Column;

fn column(t: ColumnType) -> Column {
    Column {
        name: Identifier::parse("c").expect("identifier"),
        source: None,
        column_type: t,
        required: false,
        max_length: None,
        pattern: None,
        allowed_values: None,
    }
}

/// Validates a single value in a one-column schema; returns the loaded value or the message.
fn check(col: Column, value: &str) -> Result<Option<String>, String> {
    let schema = Schema { columns: vec![col] };
    let compiled = CompiledSchema::new(&schema).expect("schema");
    let mapping = FieldMapping::positional(&schema);
    let mut batch = ValidBatch::new(1);
    let mut errors = Vec::new();
    let buf = value.as_bytes();
    let ends = [buf.len()];
    let ok = compiled.check_record(
        7,
        RecordBody::Fields(FieldsRef::new(buf, &ends)),
        &mapping,
        &mut batch,
        &mut errors,
    );
    if ok {
        assert!(errors.is_empty());
        let (row, values) = batch.rows().next().expect("one row");
        assert_eq!(row, 7);
        Ok(values.iter().next().expect("one value").map(str::to_owned))
    } else {
        assert!(
            batch.is_empty(),
            "a rejected row must not stay in the batch"
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].row, 7);
        assert_eq!(errors[0].column, "c");
        Err(errors[0].error.clone())
    }
}

fn accepts(t: ColumnType, values: &[&str]) {
    for v in values {
        assert!(check(column(t), v).is_ok(), "{t:?} must accept {v:?}");
    }
}

fn rejects(t: ColumnType, values: &[&str], message: &str) {
    for v in values {
        assert_eq!(
            check(column(t), v),
            Err(message.to_owned()),
            "{t:?} must reject {v:?}"
        );
    }
}

#[test]
fn string_values() {
    accepts(
        ColumnType::String,
        &["x", " spaced ", "ünïcødé", "a,b\"c", "=1+1"],
    );
    rejects(ColumnType::String, &["nul\0byte"], messages::NUL);
}

#[test]
fn integer_values() {
    accepts(
        ColumnType::Integer,
        &[
            "0",
            "-1",
            "+42",
            "007",
            "9223372036854775807",
            "-9223372036854775808",
        ],
    );
    rejects(
        ColumnType::Integer,
        &[
            "abc",
            "1.0",
            "1e3",
            " 1",
            "1 ",
            "--1",
            "+",
            "-",
            "9223372036854775808",
            "0x10",
            "１",
        ],
        messages::INTEGER,
    );
}

#[test]
fn number_values() {
    accepts(
        ColumnType::Number,
        &["0", "-1.5", "+.5", "5.", "3e4", "1.2E-7", "00012.3400"],
    );
    rejects(
        ColumnType::Number,
        &[
            "NaN", "inf", "Infinity", "1e", "e5", ".", "1.2.3", "1e99999", "1,5", " 1", "0x1",
        ],
        messages::NUMBER,
    );
    let too_many_digits = "1".repeat(1001);
    assert_eq!(
        check(column(ColumnType::Number), &too_many_digits),
        Err(messages::NUMBER.into())
    );
}

#[test]
fn boolean_values_are_normalised() {
    for (v, want) in [
        ("true", "true"),
        ("T", "true"),
        ("yes", "true"),
        ("1", "true"),
        ("Y", "true"),
        ("false", "false"),
        ("F", "false"),
        ("No", "false"),
        ("0", "false"),
        ("n", "false"),
    ] {
        assert_eq!(
            check(column(ColumnType::Boolean), v),
            Ok(Some(want.to_owned())),
            "{v}"
        );
    }
    rejects(
        ColumnType::Boolean,
        &["maybe", "2", "truee", "on"],
        messages::BOOLEAN,
    );
}

#[test]
fn date_values() {
    accepts(
        ColumnType::Date,
        &["2024-02-29", "0001-01-01", "9999-12-31", "2023-12-31"],
    );
    rejects(
        ColumnType::Date,
        &[
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-00",
            "2024-1-1",
            "24-01-01",
            "0000-01-01",
            "2024/01/01",
            "2024-01-01T00:00:00Z",
            "2024-04-31",
        ],
        messages::DATE,
    );
}

#[test]
fn timestamp_values() {
    accepts(
        ColumnType::Timestamp,
        &[
            "2026-03-30T10:00:05Z",
            "2026-03-30T10:00:05.123456+02:00",
            "2026-03-30T23:59:60Z",
            "2026-03-30T10:00:05-15:59",
            "2026-03-30T10:00:05.123456789Z",
        ],
    );
    assert_eq!(
        check(column(ColumnType::Timestamp), "2026-03-30t10:00:05z"),
        Ok(Some("2026-03-30T10:00:05Z".to_owned()))
    );
    assert_eq!(
        check(column(ColumnType::Timestamp), "2026-03-30 10:00:05+01:00"),
        Ok(Some("2026-03-30T10:00:05+01:00".to_owned()))
    );
    rejects(
        ColumnType::Timestamp,
        &[
            "2026-03-30",
            "2026-03-30T10:00:05",
            "2026-03-30T24:00:00Z",
            "2026-03-30T10:60:00Z",
            "2026-02-30T10:00:00Z",
            "2026-03-30T10:00:05+16:00",
            "2026-03-30T10:00:05.Z",
            "2026-03-30T10:00:05.1234567890Z",
            "2026-03-30T10:00:05+0100",
            "yesterday",
        ],
        messages::TIMESTAMP,
    );
}

#[test]
fn email_values() {
    accepts(
        ColumnType::Email,
        &[
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y@host-name.io",
            "a@xn--80ak6aa92e.com",
        ],
    );
    rejects(
        ColumnType::Email,
        &[
            "not-an-email",
            "@b.co",
            "a@",
            "a@b",
            "a@@b.co",
            "a b@c.de",
            ".a@b.co",
            "a.@b.co",
            "a..b@c.de",
            "a@-b.co",
            "a@b.c",
            "a@b.c0",
            "ü@b.co",
            &format!("{}@b.co", "a".repeat(65)),
        ],
        messages::EMAIL,
    );
}

#[test]
fn uuid_values() {
    accepts(
        ColumnType::Uuid,
        &[
            "123e4567-e89b-12d3-a456-426614174000",
            "123E4567-E89B-12D3-A456-426614174000",
        ],
    );
    rejects(
        ColumnType::Uuid,
        &[
            "123e4567e89b12d3a456426614174000",
            "{123e4567-e89b-12d3-a456-426614174000}",
            "123e4567-e89b-12d3-a456-42661417400g",
            "123e4567-e89b-12d3-a456",
        ],
        messages::UUID,
    );
}

#[test]
fn empty_values_are_null_unless_required() {
    for t in ColumnType::ALL {
        assert_eq!(check(column(t), ""), Ok(None), "{t:?}");
        let mut required = column(t);
        required.required = true;
        assert_eq!(check(required, ""), Err(messages::REQUIRED.into()), "{t:?}");
    }
}

#[test]
fn constraints() {
    let mut c = column(ColumnType::String);
    c.max_length = Some(3);
    assert!(check(c.clone(), "abc").is_ok());
    assert!(
        check(c.clone(), "äöü").is_ok(),
        "maxLength counts characters, not bytes"
    );
    assert_eq!(check(c, "abcd"), Err("Longer than maxLength 3".into()));

    let mut p = column(ColumnType::String);
    p.pattern = Some("[A-Z]{2}[0-9]+".into());
    assert!(check(p.clone(), "AB12").is_ok());
    assert_eq!(
        check(p.clone(), "xAB12"),
        Err(messages::PATTERN.into()),
        "patterns match the whole value"
    );
    assert_eq!(check(p, "AB12x"), Err(messages::PATTERN.into()));

    let mut a = column(ColumnType::String);
    a.allowed_values = Some(vec!["red".into(), "green".into()]);
    assert!(check(a.clone(), "red").is_ok());
    assert_eq!(check(a, "Red"), Err(messages::ALLOWED.into()));
}

fn schema(cols: &[(&str, ColumnType)]) -> Schema {
    Schema {
        columns: cols
            .iter()
            .map(|(n, t)| Column {
                name: Identifier::parse(n).expect("id"),
                ..column(*t)
            })
            .collect(),
    }
}

#[test]
fn column_count_mismatch_is_a_row_error() {
    let s = schema(&[
        ("a", ColumnType::String),
        ("b", ColumnType::String),
        ("c", ColumnType::String),
        ("d", ColumnType::String),
        ("e", ColumnType::String),
        ("f", ColumnType::String),
    ]);
    let compiled = CompiledSchema::new(&s).expect("schema");
    let mut batch = ValidBatch::new(6);
    let mut errors = Vec::new();
    let buf = b"1234";
    let ends = [1, 2, 3, 4];
    let ok = compiled.check_record(
        3,
        RecordBody::Fields(FieldsRef::new(buf, &ends)),
        &FieldMapping::positional(&s),
        &mut batch,
        &mut errors,
    );
    assert!(!ok);
    assert_eq!(
        errors,
        vec![RowError::new(
            3,
            "*",
            "1,2,3,4",
            "Wrong number of columns: expected 6, found 4"
        )]
    );
}

#[test]
fn every_bad_value_of_a_row_is_reported_and_the_row_is_not_loaded() {
    let s = schema(&[
        ("id", ColumnType::Integer),
        ("email", ColumnType::Email),
        ("age", ColumnType::Integer),
    ]);
    let compiled = CompiledSchema::new(&s).expect("schema");
    let mut batch = ValidBatch::new(3);
    let mut errors = Vec::new();
    let good = b"1a@b.co42";
    let ends = [1, 7, 9];
    assert!(compiled.check_record(
        1,
        RecordBody::Fields(FieldsRef::new(good, &ends)),
        &FieldMapping::positional(&s),
        &mut batch,
        &mut errors
    ));
    let bad = b"xnot-an-emailabc";
    let ends = [1, 13, 16];
    assert!(!compiled.check_record(
        2,
        RecordBody::Fields(FieldsRef::new(bad, &ends)),
        &FieldMapping::positional(&s),
        &mut batch,
        &mut errors
    ));
    assert_eq!(errors.len(), 3);
    assert_eq!(
        errors[1],
        RowError::new(2, "email", "not-an-email", "Invalid email format")
    );
    assert_eq!(
        errors[2],
        RowError::new(2, "age", "abc", "Expected integer")
    );
    assert_eq!(batch.len(), 1);
    let rows: Vec<(u64, Vec<Option<String>>)> = batch
        .rows()
        .map(|(r, v)| (r, v.iter().map(|x| x.map(str::to_owned)).collect()))
        .collect();
    assert_eq!(
        rows,
        vec![(
            1,
            vec![Some("1".into()), Some("a@b.co".into()), Some("42".into())]
        )]
    );
}

#[test]
fn invalid_utf8_is_a_value_error() {
    let s = schema(&[("a", ColumnType::String)]);
    let compiled = CompiledSchema::new(&s).expect("schema");
    let mut batch = ValidBatch::new(1);
    let mut errors = Vec::new();
    let buf = b"ab\xFFcd";
    let ends = [buf.len()];
    assert!(!compiled.check_record(
        9,
        RecordBody::Fields(FieldsRef::new(buf, &ends)),
        &FieldMapping::positional(&s),
        &mut batch,
        &mut errors
    ));
    assert_eq!(errors[0].error, messages::UTF8);
    assert_eq!(errors[0].value, "ab\u{FFFD}cd");
}

#[test]
fn a_character_split_across_two_fields_is_invalid_in_each() {
    // "é" is C3 A9: valid as a whole record, invalid as two fields.
    let s = schema(&[("a", ColumnType::String), ("b", ColumnType::String)]);
    let compiled = CompiledSchema::new(&s).expect("schema");
    let mut batch = ValidBatch::new(2);
    let mut errors = Vec::new();
    let buf = b"x\xC3\xA9y";
    let ends = [2, 4];
    assert!(!compiled.check_record(
        1,
        RecordBody::Fields(FieldsRef::new(buf, &ends)),
        &FieldMapping::positional(&s),
        &mut batch,
        &mut errors
    ));
    assert_eq!(
        errors.iter().map(|e| e.error.as_str()).collect::<Vec<_>>(),
        vec![messages::UTF8, messages::UTF8]
    );
    // And valid multi-byte text in separate fields is fine.
    let buf = "éü".as_bytes();
    let ends = [2, 4];
    errors.clear();
    assert!(compiled.check_record(
        2,
        RecordBody::Fields(FieldsRef::new(buf, &ends)),
        &FieldMapping::positional(&s),
        &mut batch,
        &mut errors
    ));
}

#[test]
fn header_mapping_matches_names_in_any_order() {
    let s = schema(&[
        ("id", ColumnType::Integer),
        ("name", ColumnType::String),
        ("age", ColumnType::Integer),
    ]);
    let header: Vec<String> = ["Name", "id", "extra"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    let (mapping, missing) = FieldMapping::from_header(&s, &header);
    assert_eq!(missing, vec![Identifier::parse("age").expect("id")]);
    let compiled = CompiledSchema::new(&s).expect("schema");
    let mut batch = ValidBatch::new(3);
    let mut errors = Vec::new();
    let buf = b"bob7x";
    let ends = [3, 4, 5];
    assert!(compiled.check_record(
        1,
        RecordBody::Fields(FieldsRef::new(buf, &ends)),
        &mapping,
        &mut batch,
        &mut errors
    ));
    let values: Vec<Option<String>> = batch
        .rows()
        .next()
        .expect("row")
        .1
        .iter()
        .map(|x| x.map(str::to_owned))
        .collect();
    assert_eq!(values, vec![Some("7".into()), Some("bob".into()), None]);
}

#[test]
fn a_column_with_a_source_reads_that_header_field_or_member() {
    let mut s = schema(&[
        ("customer_e_mail", ColumnType::Email),
        ("id", ColumnType::Integer),
    ]);
    s.columns[0].source = Some("Customer E-Mail".into());
    let header: Vec<String> = ["ID", "Customer E-Mail", "customer_e_mail", "Extra"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    let (mapping, missing) = FieldMapping::from_header(&s, &header);
    assert!(missing.is_empty());
    // The field named like the column is not read: the source wins.
    assert_eq!(mapping.unmatched_fields(), [2, 3]);
    let compiled = CompiledSchema::new(&s).expect("schema");
    let mut batch = ValidBatch::new(2);
    let mut errors = Vec::new();
    let buf = b"7a@example.comnot-an-emailx";
    let ends = [1, 14, 26, 27];
    assert!(
        compiled.check_record(
            1,
            RecordBody::Fields(FieldsRef::new(buf, &ends)),
            &mapping,
            &mut batch,
            &mut errors
        ),
        "{errors:?}"
    );
    let line = RecordBody::Json(
        br#"{"Customer E-Mail": "b@example.com", "customer_e_mail": "bad", "id": 8}"#,
    );
    assert!(compiled.check_record(2, line, &FieldMapping::by_name(&s), &mut batch, &mut errors));
    let rows: Vec<Vec<Option<String>>> = batch
        .rows()
        .map(|(_, v)| v.iter().map(|x| x.map(str::to_owned)).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![Some("a@example.com".into()), Some("7".into())],
            vec![Some("b@example.com".into()), Some("8".into())]
        ]
    );
    // Without a source, the header is matched by name as before.
    let plain = schema(&[("id", ColumnType::Integer)]);
    let (m, missing) = FieldMapping::from_header(&plain, &header);
    assert!(missing.is_empty());
    assert_eq!(m.unmatched_fields(), [1, 2, 3]);
    assert!(
        FieldMapping::positional(&plain)
            .unmatched_fields()
            .is_empty()
    );
}

#[test]
fn json_lines_are_checked_by_name() {
    let s = schema(&[
        ("id", ColumnType::Integer),
        ("ok", ColumnType::Boolean),
        ("tags", ColumnType::String),
    ]);
    let compiled = CompiledSchema::new(&s).expect("schema");
    let mapping = FieldMapping::by_name(&s);
    let mut batch = ValidBatch::new(3);
    let mut errors = Vec::new();
    assert!(compiled.check_record(
        1,
        RecordBody::Json(br#"{"id": 5, "ok": true, "tags": ["a"], "extra": 1}"#),
        &mapping,
        &mut batch,
        &mut errors
    ));
    assert!(compiled.check_record(
        2,
        RecordBody::Json(br#"{"id": "6", "ok": null}"#),
        &mapping,
        &mut batch,
        &mut errors
    ));
    assert!(!compiled.check_record(
        3,
        RecordBody::Json(br#"{"id": 1.5}"#),
        &mapping,
        &mut batch,
        &mut errors
    ));
    assert!(!compiled.check_record(
        4,
        RecordBody::Json(b"[1,2]"),
        &mapping,
        &mut batch,
        &mut errors
    ));
    assert!(!compiled.check_record(
        5,
        RecordBody::Json(b"{nope"),
        &mapping,
        &mut batch,
        &mut errors
    ));
    assert!(!compiled.check_record(
        6,
        RecordBody::Malformed(Problem::RecordTooLong),
        &mapping,
        &mut batch,
        &mut errors
    ));
    let msgs: Vec<(u64, &str, &str)> = errors
        .iter()
        .map(|e| (e.row, e.column.as_str(), e.error.as_str()))
        .collect();
    assert_eq!(
        msgs,
        vec![
            (3, "id", messages::INTEGER),
            (4, "*", messages::JSON_OBJECT),
            (5, "*", messages::JSON),
            (6, "*", "Record too long"),
        ]
    );
    let values: Vec<Vec<Option<String>>> = batch
        .rows()
        .map(|(_, v)| v.iter().map(|x| x.map(str::to_owned)).collect())
        .collect();
    assert_eq!(
        values,
        vec![
            vec![
                Some("5".into()),
                Some("true".into()),
                Some("[\"a\"]".into())
            ],
            vec![Some("6".into()), None, None],
        ]
    );
}

#[test]
fn error_values_are_cut_at_1000_characters() {
    let long = "é".repeat(1500);
    let e = RowError::new(1, "c", &long, "x");
    assert_eq!(e.value.chars().count(), 1000);
}

#[test]
fn canonical_csv_round_trips_through_the_decoder() {
    use crate::format::{CsvDecoder, CsvDialect, Step};
    let fields: Vec<&[u8]> = vec![b"", b"a,b", b"say \"hi\"", b"two\nlines", b"plain"];
    let line = encode_canonical_csv(fields.iter().copied());
    let mut d = CsvDecoder::new(CsvDialect::default(), 0, 1 << 20);
    let mut input: &[u8] = &line;
    match d.next(&mut input, true) {
        Step::Record(r) => match r.body {
            RecordBody::Fields(f) => assert_eq!(f.iter().collect::<Vec<_>>(), fields),
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
}

/// The straightforward definition `is_email` was optimised from.
fn is_email_reference(v: &str) -> bool {
    if v.len() > 254 {
        return false;
    }
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
    if !local_ok {
        return false;
    }
    // One pass over the labels, no allocation: this runs for every value.
    let mut labels = 0;
    let mut last = "";
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2
        && (last.len() >= 2 && last.bytes().all(|b| b.is_ascii_alphabetic())
            || last.starts_with("xn--"))
}

#[test]
fn is_email_agrees_with_its_reference_definition() {
    use crate::validation::is_email;
    // Deterministic pseudo-random strings built from fragments that matter,
    // plus the boundary cases below.
    let fragments = [
        "a", "b9", "x", ".", "..", "-", "@", "co", "org", "xn--", "ü", "+", "!", " ", "_",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % 1_000_003).unwrap_or(0)
    };
    let mut valid = 0;
    for _ in 0..200_000 {
        // A local part, `@`, then two or three dot-separated labels: most
        // strings are near-emails, so both answers are common.
        let mut part = |n: usize| -> String {
            (0..1 + next() % n)
                .map(|_| fragments[next() % fragments.len()])
                .collect()
        };
        let labels = 2 + part(1).len() % 2;
        let domain: Vec<String> = (0..labels).map(|_| part(2)).collect();
        let v = format!("{}@{}", part(3), domain.join("."));
        assert_eq!(is_email(&v), is_email_reference(&v), "{v:?}");
        valid += usize::from(is_email(&v));
    }
    assert!(
        valid > 100,
        "the strings reach the accepting paths ({valid})"
    );
    for v in [
        "a@b.co",
        "a@xn--80ak6aa92e.com",
        "a@b.xn--",
        &format!("{}@b.co", "a".repeat(64)),
        &format!("{}@b.co", "a".repeat(65)),
        &format!("a@{}.co", "b".repeat(63)),
        &format!("a@{}.co", "b".repeat(64)),
        &format!("a@{}.com", "b".repeat(250)),
    ] {
        assert_eq!(is_email(v), is_email_reference(v), "{v:?}");
    }
}

#[test]
fn json_values() {
    accepts(
        ColumnType::Json,
        &[
            r#"{"a": [1, 2.5, null]}"#,
            "\"text\"",
            "12",
            "true",
            "null",
            "[]",
            r#"{"k": "\\u0000 is a backslash and text here"}"#,
        ],
    );
    rejects(
        ColumnType::Json,
        &["{", "abc", "{'a': 1}", "[1,]"],
        messages::JSON_VALUE,
    );
    rejects(
        ColumnType::Json,
        &[r#"{"k": "a\u0000b"}"#, r#"["\u0000"]"#, r#"{"\u0000": 1}"#],
        messages::JSON_NUL,
    );
}

fn schema_of(columns: &[(&str, ColumnType)]) -> Schema {
    Schema {
        columns: columns
            .iter()
            .map(|(name, t)| Column {
                name: Identifier::parse(name).expect("identifier"),
                ..column(*t)
            })
            .collect(),
    }
}

/// The values of the one valid row `body` gives.
fn row_values(
    compiled: &CompiledSchema,
    mapping: &FieldMapping,
    body: RecordBody<'_>,
) -> Vec<Option<String>> {
    let mut batch = ValidBatch::new(compiled.width());
    let mut errors = Vec::new();
    assert!(
        compiled.check_record(1, body, mapping, &mut batch, &mut errors),
        "{errors:?}"
    );
    let (_, values) = batch.rows().next().expect("a row");
    values.iter().map(|v| v.map(str::to_owned)).collect()
}

#[test]
fn a_json_column_takes_a_json_lines_member_as_it_is() {
    let schema = schema_of(&[("id", ColumnType::Integer), ("doc", ColumnType::Json)]);
    let compiled = CompiledSchema::new(&schema).expect("schema");
    let mapping = FieldMapping::by_name(&schema);
    let line = br#"{"id": 1, "doc": {"b": [true]}}"#;
    assert_eq!(
        row_values(&compiled, &mapping, RecordBody::Json(line)),
        [Some("1".into()), Some(r#"{"b":[true]}"#.into())]
    );
    let line = br#"{"id": 2, "doc": "plain"}"#;
    assert_eq!(
        row_values(&compiled, &mapping, RecordBody::Json(line)),
        [Some("2".into()), Some("\"plain\"".into())],
        "a string member is JSON text too"
    );
    let line = br#"{"id": 3, "doc": null}"#;
    assert_eq!(
        row_values(&compiled, &mapping, RecordBody::Json(line)),
        [Some("3".into()), None]
    );
}

#[test]
fn rescue_keeps_unread_csv_fields_with_nul_and_bad_utf8_replaced() {
    let schema = schema_of(&[("id", ColumnType::Integer)]);
    let compiled = CompiledSchema::new(&schema).expect("schema").rescuing();
    assert_eq!(compiled.width(), 2);
    let header = ["id".to_owned(), "a\0b".to_owned(), "note".to_owned()];
    let (mapping, _) = FieldMapping::from_header(&schema, &header);
    let bytes = b"7x\0y\xff";
    let fields = RecordBody::Fields(FieldsRef::new(bytes, &[1, 4, 5]));
    let values = row_values(&compiled, &mapping, fields);
    assert_eq!(values[0].as_deref(), Some("7"));
    let rescued: serde_json::Value =
        serde_json::from_str(values[1].as_deref().expect("rescued")).expect("json");
    assert_eq!(
        rescued,
        serde_json::json!({"a\u{FFFD}b": "x\u{FFFD}y", "note": "\u{FFFD}"})
    );
    // A header every field of which a column reads rescues nothing.
    let (mapping, _) = FieldMapping::from_header(&schema, &["id".to_owned()]);
    let fields = RecordBody::Fields(FieldsRef::new(b"8", &[1]));
    assert_eq!(
        row_values(&compiled, &mapping, fields),
        [Some("8".into()), None]
    );
}

#[test]
fn rescue_keeps_unread_json_lines_members_as_they_are() {
    let schema = schema_of(&[("id", ColumnType::Integer)]);
    let compiled = CompiledSchema::new(&schema).expect("schema").rescuing();
    let mapping = FieldMapping::by_name(&schema);
    let line = br#"{"id": 1, "tags": ["a", {"n": 2}], "s": "x\u0000"}"#;
    let values = row_values(&compiled, &mapping, RecordBody::Json(line));
    let rescued: serde_json::Value =
        serde_json::from_str(values[1].as_deref().expect("rescued")).expect("json");
    assert_eq!(
        rescued,
        serde_json::json!({"tags": ["a", {"n": 2}], "s": "x\u{FFFD}"})
    );
    let values = row_values(&compiled, &mapping, RecordBody::Json(br#"{"id": 2}"#));
    assert_eq!(values, [Some("2".into()), None]);
    // Without rescue the row has only its columns.
    let plain = CompiledSchema::new(&schema).expect("schema");
    assert_eq!(
        row_values(&plain, &mapping, RecordBody::Json(line)),
        [Some("1".into())]
    );
}
