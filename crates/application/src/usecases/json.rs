//! JSON helpers: decoding with the path of the offending field, and RFC 7386
//! merge patches.

use serde::de::DeserializeOwned;

use crate::AppError;

/// Decodes `value` as `T`; on failure the error names the field as a JSON path
/// (`destination.table`, `schema.columns[2].type`).
pub fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path.is_empty() || path == "." {
            "body".to_owned()
        } else {
            path
        };
        AppError::invalid(field, clean_message(&e.inner().to_string()))
    })
}

/// serde's messages end with " at line 1 column 42", meaningless for a value.
fn clean_message(m: &str) -> String {
    match m.find(" at line ") {
        Some(i) => m.get(..i).unwrap_or(m).to_owned(),
        None => m.to_owned(),
    }
}

/// Refuses a patch naming a top-level member outside `allowed`: a typo such
/// as `{"stauts": null}` would otherwise be a silent no-op.
pub fn check_patch_members(patch: &serde_json::Value, allowed: &[&str]) -> Result<(), AppError> {
    let Some(map) = patch.as_object() else {
        return Err(AppError::invalid("body", "a JSON object is required"));
    };
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(AppError::invalid(
            unknown.clone(),
            format!("unknown member; expected one of {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Applies an RFC 7386 JSON merge patch: objects merge recursively, `null`
/// removes a member, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(map) = target {
        for (k, v) in patch_map {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1, 2]});
        merge_patch(&mut doc, &json!({"a": [3]}));
        assert_eq!(doc, json!({"a": [3]}));
    }

    #[test]
    fn patches_name_only_known_members() {
        assert!(
            check_patch_members(&json!({"name": "x", "status": null}), &["name", "status"]).is_ok()
        );
        let err =
            check_patch_members(&json!({"stauts": null}), &["name", "status"]).expect_err("typo");
        assert!(matches!(err, AppError::Invalid { field, .. } if field == "stauts"));
        assert!(check_patch_members(&json!([1]), &["name"]).is_err());
    }

    #[test]
    fn decode_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            n: u32,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Inner>,
        }
        let err =
            from_json::<Outer>(json!({"items": [{"n": 1}, {"n": "x"}]})).expect_err("must fail");
        match err {
            AppError::Invalid { field, message } => {
                assert_eq!(field, "items[1].n");
                assert!(!message.contains("line"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            matches!(from_json::<Outer>(json!([])), Err(AppError::Invalid { field, .. }) if field == "body")
        );
    }
}
