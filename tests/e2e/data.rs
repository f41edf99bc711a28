//! A deterministic customers file with known invalid rows and duplicate keys,
//! and the expected destination contents per strategy, computed here
//! independently of Sluice.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// One source row.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: u64,
    pub email: String,
    pub name: String,
    pub age: String,
    pub signup_date: String,
    pub score: String,
}

impl Row {
    /// Row `n` (1-based): every 100th row repeats the id of row n-37; every
    /// 250th has a bad e-mail; every 333rd a non-integer age.
    pub fn new(n: u64) -> Self {
        let id = if n % 100 == 0 { n - 37 } else { n };
        Self {
            id,
            email: if n % 250 == 0 {
                "not-an-email".into()
            } else {
                format!("user{n}@example.com")
            },
            name: format!("Name \"{n}\", Jr."),
            age: if n % 333 == 0 {
                "abc".into()
            } else {
                (18 + n % 60).to_string()
            },
            signup_date: format!("2024-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
            score: format!("{}.{}", (n % 1000) / 10, n % 10),
        }
    }

    /// True if validation must reject the row (with the given email rule).
    pub fn invalid(&self, email_checked: bool) -> bool {
        (email_checked && self.email == "not-an-email") || self.age == "abc"
    }

    fn csv_line(&self) -> String {
        format!(
            "{},{},\"{}\",{},{},{}\n",
            self.id,
            self.email,
            self.name.replace('"', "\"\""),
            self.age,
            self.signup_date,
            self.score
        )
    }

    /// The destination columns as text, as `columns()` reads them back.
    pub fn loaded(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.email.clone(),
            self.name.clone(),
            self.age.clone(),
            self.signup_date.clone(),
            self.score.clone(),
        ]
    }
}

/// The SQL select list matching [`Row::loaded`].
pub const COLUMNS: &str = "id::text, email, name, age::text, signup_date::text, score::text";

/// The CSV text of rows `from..=to` with a header.
pub fn csv(from: u64, to: u64) -> String {
    let mut s = String::from("id,email,name,age,signup_date,score\n");
    for n in from..=to {
        s.push_str(&Row::new(n).csv_line());
    }
    s
}

/// The pipeline schema; `email_type` is `email` or `string`.
pub fn schema(email_type: &str) -> Value {
    json!({"columns": [
        {"name": "id", "type": "integer", "required": true},
        {"name": "email", "type": email_type, "required": true},
        {"name": "name", "type": "string", "maxLength": 200},
        {"name": "age", "type": "integer"},
        {"name": "signup_date", "type": "date"},
        {"name": "score", "type": "number"}
    ]})
}

/// Expected outcome of loading rows `1..=n` once.
pub struct Expected {
    pub failed: u64,
    pub skipped: u64,
    pub rows: Vec<Vec<String>>,
}

/// Expected contents per strategy (`append`/`replace`: first occurrence of a
/// key wins for append, last for replace and upsert).
pub fn expected(n: u64, strategy: &str, email_checked: bool) -> Expected {
    let rows: Vec<Row> = (1..=n).map(Row::new).collect();
    let valid: Vec<&Row> = rows.iter().filter(|r| !r.invalid(email_checked)).collect();
    let failed = (rows.len() - valid.len()) as u64;
    let mut by_key: BTreeMap<u64, &Row> = BTreeMap::new();
    for r in &valid {
        match strategy {
            "append" => {
                by_key.entry(r.id).or_insert(r);
            }
            _ => {
                by_key.insert(r.id, r);
            }
        }
    }
    Expected {
        failed,
        skipped: (valid.len() - by_key.len()) as u64,
        rows: by_key.values().map(|r| r.loaded()).collect(),
    }
}
