//! JSON read strictly: an object that names one key twice is refused, naming the key, where
//! serde_json would keep the last value (`{"size": 1, "size": 100}` would trade 100).

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

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
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut dup = None;
    let value = StrictSeed {
        path: String::new(),
        dup: &mut dup,
    }
    .deserialize(&mut de);
    if let Some((path, key)) = dup {
        return Err(StrictError::Duplicate { path, key });
    }
    let value = value.map_err(StrictError::Json)?;
    de.end().map_err(StrictError::Json)?;
    Ok(value)
}

/// Marks the error that stops the parse at a duplicate (the real report is in `dup`).
const DUPLICATE: &str = "duplicate key";

struct StrictSeed<'a> {
    path: String,
    dup: &'a mut Option<(String, String)>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        let mut i = 0usize;
        loop {
            let path = if self.path.is_empty() {
                format!("[{i}]")
            } else {
                format!("{}[{i}]", self.path)
            };
            let next = seq.next_element_seed(StrictSeed {
                path,
                dup: &mut *self.dup,
            })?;
            match next {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                *self.dup = Some((self.path.clone(), key));
                return Err(de::Error::custom(DUPLICATE));
            }
            let path = StrictError::field(&self.path, &key);
            let v = map.next_value_seed(StrictSeed {
                path,
                dup: &mut *self.dup,
            })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// A [`Value`] that refuses duplicate keys when deserialized (for callers that take any
/// `Deserializer`).
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StrictValue, D::Error> {
        let mut dup = None;
        let v = StrictSeed {
            path: String::new(),
            dup: &mut dup,
        }
        .deserialize(d);
        match dup {
            Some((path, key)) => Err(de::Error::custom(format!(
                "duplicate key `{}`",
                StrictError::field(&path, &key)
            ))),
            None => v.map(StrictValue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let v: StrictValue = serde_json::from_str(r#"{"a": {"b": 1, "b": 2}}"#)
            .map(|v: StrictValue| v)
            .unwrap_or_else(|e| {
                assert!(e.to_string().contains("duplicate key `a.b`"), "{e}");
                StrictValue(Value::Null)
            });
        assert_eq!(v.0, Value::Null);
    }
}
