//! JSON request bodies read strictly: an object that names one key twice is refused, naming
//! the key, where serde_json would keep the last value (`{"size": 1, "size": 100}` would trade
//! 100). The parser is the one the engine's answers go through ([`crate::strict_json`]); this
//! names what it finds the way the API names fields.

use serde_json::Value;

/// Why a body was not taken.
#[derive(Debug)]
pub enum StrictError {
    /// Not JSON, or JSON of another shape: serde_json's error, where it stopped.
    Json(serde_json::Error),
    /// `key` appears twice in the object at `path` ("" for the top level).
    Duplicate { path: String, key: String },
}

impl StrictError {
    /// The duplicated key's full name, as the API names fields (`config.symbols`).
    pub fn field(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    }
}

/// Parse `bytes` as one JSON value, refusing duplicate keys at any depth.
pub fn from_slice(bytes: &[u8]) -> Result<Value, StrictError> {
    crate::strict_json::from_slice(bytes).map_err(|e| match e {
        crate::strict_json::StrictError::Duplicate { key, within } => {
            StrictError::Duplicate { path: within, key }
        }
        crate::strict_json::StrictError::Malformed(e) => StrictError::Json(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for (body, path, key) in [
            (r#"{"size": 1, "size": 100}"#, "", "size"),
            (
                r#"{"config": {"user_id": "a", "symbols": [], "symbols": ["X/Y"]}}"#,
                "config",
                "symbols",
            ),
            (r#"[{"a": 1}, {"b": {"c": 1, "c": 2}}]"#, "[1].b", "c"),
        ] {
            match from_slice(body.as_bytes()) {
                Err(StrictError::Duplicate { path: p, key: k }) => {
                    assert_eq!((p.as_str(), k.as_str()), (path, key), "{body}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn everything_else_reads_as_serde_json_does() {
        for body in [
            r#"{"a": 1, "b": -2, "c": 1.5, "d": "x", "e": null, "f": [true, false], "g": {}}"#,
            r#"[]"#,
            r#"18446744073709551615"#,
            r#""é\u00e9""#,
        ] {
            let strict = from_slice(body.as_bytes()).unwrap();
            let loose: Value = serde_json::from_str(body).unwrap();
            assert_eq!(strict, loose, "{body}");
        }
        // Keys keep their order.
        let v = from_slice(br#"{"z": 1, "a": 2}"#).unwrap();
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["z", "a"]
        );
        assert_eq!(v, json!({"z": 1, "a": 2}));
        for bad in ["{", "{\"a\": 1} x", "", "{\"a\" 1}"] {
            assert!(
                matches!(from_slice(bad.as_bytes()), Err(StrictError::Json(_))),
                "{bad}"
            );
        }
    }
}
