use super::*;
use crate::validation::{CompiledSchema, FieldMapping, ValidBatch};

fn profile(values: &[&str]) -> ColumnProfile {
    let mut p = ColumnProfile::new("c");
    for v in values {
        p.observe(Some(v));
    }
    p
}

#[test]
fn the_lattice_picks_the_narrowest_type_every_value_fits() {
    let cases: [(&[&str], ColumnType); 14] = [
        (&["1", "22", "-3"], ColumnType::Integer),
        (&["1", "2.5", "3e2"], ColumnType::Number),
        (&["0", "1"], ColumnType::Integer),
        (&["true", "no", "T"], ColumnType::Boolean),
        (&["true", "2"], ColumnType::String),
        (&["2024-01-31", "1999-12-01"], ColumnType::Date),
        (&["2024-02-30"], ColumnType::String),
        (
            &["2024-01-31T10:00:00Z", "2024-01-31 10:00:00+02:00"],
            ColumnType::Timestamp,
        ),
        (&["2024-01-31", "2024-01-31T10:00:00Z"], ColumnType::String),
        (&["0b5a0bd6-1bb5-4d5c-a53d-2c1c4f4b9d11"], ColumnType::Uuid),
        (&["ann@example.com", "bob@example.org"], ColumnType::Email),
        (&["ann@example.com", "nobody"], ColumnType::String),
        (&["9223372036854775808"], ColumnType::Number),
        (&["12", "N/A"], ColumnType::String),
    ];
    for (values, want) in cases {
        assert_eq!(profile(values).proposed_type(), want, "{values:?}");
    }
    assert_eq!(ColumnProfile::new("c").proposed_type(), ColumnType::String);
}

#[test]
fn empty_values_are_ignored_for_the_type() {
    let mut p = profile(&["1", "2"]);
    p.observe(Some(""));
    p.observe(None);
    assert_eq!(p.values, 2);
    assert_eq!(p.proposed_type(), ColumnType::Integer);
}

#[test]
fn leading_zeros_keep_a_numeric_column_a_string() {
    assert_eq!(
        profile(&["01234", "98765"]).proposed_type(),
        ColumnType::String
    );
    assert_eq!(
        profile(&["0", "0.5", "10"]).proposed_type(),
        ColumnType::Number
    );
    assert_eq!(profile(&["-007"]).leading_zero.as_deref(), Some("-007"));
    assert_eq!(profile(&["0", "100"]).leading_zero, None);
}

#[test]
fn samples_are_distinct_bounded_and_cut() {
    let long = "x".repeat(500);
    let p = profile(&["a", "a", "b", "c", &long, "d", "e", "f"]);
    assert_eq!(p.samples.len(), MAX_SAMPLES);
    assert_eq!(p.samples[..3], ["a", "b", "c"]);
    assert_eq!(p.samples[3].chars().count(), MAX_SAMPLE_CHARS);
    assert_eq!(p.max_chars, 500);
}

#[test]
fn closest_names_the_type_most_values_fit() {
    let p = profile(&["1", "2", "3", "oops"]);
    assert_eq!(p.closest(), Some((ColumnType::Integer, 0.75)));
    assert_eq!(p.share(ColumnType::Integer), 0.75);
    assert_eq!(profile(&["a", "b", "1"]).closest(), None);
    assert_eq!(profile(&["1"]).closest(), None);
}

fn csv(p: &mut SampleProfiler, line: &str) {
    let fields: Vec<&str> = line.split(',').collect();
    let mut buf = Vec::new();
    let mut ends = Vec::new();
    for f in fields {
        buf.extend_from_slice(f.as_bytes());
        ends.push(buf.len());
    }
    p.record(RecordBody::Fields(FieldsRef::new(&buf, &ends)));
}

fn header(p: &mut SampleProfiler, file: &str, line: &str) {
    let h: Vec<String> = line.split(',').map(str::to_owned).collect();
    p.header(file, &h);
}

#[test]
fn headers_map_to_identifiers_with_their_source() {
    let mut p = SampleProfiler::new();
    header(
        &mut p,
        "a.csv",
        "Customer ID,E-Mail Adresse,Größe,order,id,,id",
    );
    csv(&mut p, "1,ann@example.com,12,x,5,,6");
    let inferred = p.finish();
    let names: Vec<&str> = inferred.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "customer_id",
            "e_mail_adresse",
            "grosse",
            "order",
            "id",
            "column_6",
            "id_2"
        ]
    );
    let sources: Vec<Option<&str>> = inferred
        .columns
        .iter()
        .map(|c| c.source.as_deref())
        .collect();
    assert_eq!(
        sources,
        [
            Some("Customer ID"),
            Some("E-Mail Adresse"),
            Some("Größe"),
            None,
            None,
            Some(""),
            Some("id")
        ]
    );
    assert_eq!(inferred.mapping.len(), 7);
    assert_eq!(inferred.mapping[2].header, "Größe");
    assert_eq!(inferred.columns[1].column_type, ColumnType::Email);
}

#[test]
fn files_with_other_headers_are_warned_about_and_absent_columns_not_required() {
    let mut p = SampleProfiler::new();
    header(&mut p, "a.csv", "id,name");
    csv(&mut p, "1,ann");
    header(&mut p, "b.csv", "id,email");
    csv(&mut p, "2,bob@example.com");
    let inferred = p.finish();
    assert_eq!(inferred.columns.len(), 3);
    assert!(inferred.columns[0].required);
    assert!(!inferred.columns[1].required);
    assert!(!inferred.columns[2].required);
    assert_eq!(inferred.columns[0].seen, 2);
    assert_eq!(
        inferred.warnings,
        ["The header of b.csv differs from the header of a.csv: it adds email and lacks name"]
    );
}

#[test]
fn csv_without_header_is_positional_and_bad_widths_are_malformed() {
    let mut p = SampleProfiler::new();
    csv(&mut p, "1,2024-01-01");
    csv(&mut p, "2,2024-01-02,extra");
    csv(&mut p, "3,");
    let inferred = p.finish();
    let names: Vec<&str> = inferred.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["column_1", "column_2"]);
    assert_eq!(inferred.columns[1].column_type, ColumnType::Date);
    assert!(!inferred.columns[1].required);
    assert_eq!(inferred.malformed, 1);
    assert_eq!(inferred.rows, 3);
    assert!(
        inferred
            .warnings
            .iter()
            .any(|w| w.starts_with("1 of 3 sampled records"))
    );
}

#[test]
fn json_lines_are_profiled_by_member() {
    let mut p = SampleProfiler::new();
    for line in [
        r#"{"id": 1, "amount": 2.5, "ok": true, "tags": ["a"], "note": null}"#,
        r#"{"id": 2, "amount": 3, "ok": false, "tags": [], "note": ""}"#,
        r#"[1]"#,
        r#"not json"#,
    ] {
        p.record(RecordBody::Json(line.as_bytes()));
    }
    let inferred = p.finish();
    let got: Vec<(&str, ColumnType, bool)> = inferred
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.column_type, c.required))
        .collect();
    assert_eq!(
        got,
        [
            ("id", ColumnType::Integer, true),
            ("amount", ColumnType::Number, true),
            ("ok", ColumnType::Boolean, true),
            ("tags", ColumnType::String, true),
            ("note", ColumnType::String, false),
        ]
    );
    assert_eq!(inferred.malformed, 2);
    assert!(
        inferred
            .warnings
            .iter()
            .any(|w| w.starts_with("Column note is empty"))
    );
}

#[test]
fn the_proposed_schema_accepts_every_sampled_row() {
    let rows = [
        "1,ann@example.com,2024-01-01,0.5,yes,007,2024-01-01T00:00:00z,0b5a0bd6-1bb5-4d5c-a53d-2c1c4f4b9d11, x",
        "2,bob@example.org,2024-02-29,12,NO,123,2024-01-01 10:00:00.123+01:00,0B5A0BD6-1BB5-4D5C-A53D-2C1C4F4B9D11,",
        "-3,c.d@example.co.uk,1999-12-31,-1e3,t,,2024-12-31T23:59:60Z,00000000-0000-0000-0000-000000000000,\"q\"",
    ];
    let head = "Id,E-Mail,Day,Amount,Flag,Zip,At,Uuid,Free Text";
    let mut p = SampleProfiler::new();
    header(&mut p, "f.csv", head);
    for r in rows {
        csv(&mut p, r);
    }
    let inferred = p.finish();
    let types: Vec<ColumnType> = inferred.columns.iter().map(|c| c.column_type).collect();
    assert_eq!(
        types,
        [
            ColumnType::Integer,
            ColumnType::Email,
            ColumnType::Date,
            ColumnType::Number,
            ColumnType::Boolean,
            ColumnType::String,
            ColumnType::Timestamp,
            ColumnType::Uuid,
            ColumnType::String,
        ]
    );
    let schema = inferred.schema();
    assert_eq!(schema.validate(), Ok(()));
    let compiled = CompiledSchema::new(&schema).expect("compiles");
    let h: Vec<String> = head.split(',').map(str::to_owned).collect();
    let (mapping, missing) = FieldMapping::from_header(&schema, &h);
    assert!(missing.is_empty(), "{missing:?}");
    let mut batch = ValidBatch::new(compiled.width());
    let mut errors = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let fields: Vec<&str> = r.split(',').collect();
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for f in fields {
            buf.extend_from_slice(f.as_bytes());
            ends.push(buf.len());
        }
        let body = RecordBody::Fields(FieldsRef::new(&buf, &ends));
        assert!(
            compiled.check_record(i as u64 + 1, body, &mapping, &mut batch, &mut errors),
            "{errors:?}"
        );
    }
    assert!(!inferred.columns[5].required && !inferred.columns[8].required);
    assert!(inferred.columns[0].required);
}
