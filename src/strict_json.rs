//! JSON read strictly: an object that names a key twice is refused, not read as its last
//! value. Two parsers that keep different copies (a proxy the first, we the last) would
//! see different answers; an answer that says two things is not one to act on.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Why a document was refused.
#[derive(Debug)]
pub enum StrictError {
    /// An object names `key` twice; `within` is where that object is ("" at the top,
    /// else like `indicators` or `decisions[2]`).
    Duplicate { key: String, within: String },
    /// Not JSON at all (or nested too deeply).
    Malformed(serde_json::Error),
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictError::Duplicate { key, within } if within.is_empty() => {
                write!(f, "duplicate key {key:?}")
            }
            StrictError::Duplicate { key, within } => {
                write!(f, "duplicate key {key:?} in {within}")
            }
            StrictError::Malformed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StrictError {}

/// Parse `bytes` as one JSON value, refusing duplicate keys at any depth.
pub fn from_slice(bytes: &[u8]) -> Result<Value, StrictError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Seed {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match (parsed, found.into_inner()) {
        (_, Some(dup)) => Err(dup),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(StrictError::Malformed(e)),
    }
}

/// Parse `text` as [`from_slice`] does.
pub fn from_str(text: &str) -> Result<Value, StrictError> {
    from_slice(text.as_bytes())
}

struct Seed<'a> {
    path: String,
    found: &'a RefCell<Option<StrictError>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        Ok(Value::from(v))
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed {
            path: format!("{}[{}]", self.path, out.len()),
            found: self.found,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let message = format!("duplicate key {key:?}");
                *self.found.borrow_mut() = Some(StrictError::Duplicate {
                    key,
                    within: self.path.clone(),
                });
                return Err(de::Error::custom(message));
            }
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let value = map.next_value_seed(Seed {
                path,
                found: self.found,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_named_twice_is_refused_at_any_depth() {
        let e = from_str(r#"{"direction":"bearish","confidence":0.9,"direction":"bullish"}"#)
            .unwrap_err();
        assert_eq!(e.to_string(), r#"duplicate key "direction""#);
        let e = from_str(r#"{"phase":"x","indicators":{"rsi":1,"rsi":2}}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"duplicate key "rsi" in indicators"#);
        let e = from_str(r#"{"a":[{"b":1},{"c":1,"c":1}]}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"duplicate key "c" in a[1]"#);
        // The same key in sibling objects is no duplicate.
        assert_eq!(
            from_str(r#"{"a":{"k":1},"b":{"k":2},"k":[1,1.5,-2,null,true,"s"]}"#).unwrap(),
            json!({"a":{"k":1},"b":{"k":2},"k":[1,1.5,-2,null,true,"s"]})
        );
        // Escapes spell the same key.
        assert!(from_str(r#"{"a":1,"\u0061":2}"#).is_err());
    }

    #[test]
    fn malformed_json_is_malformed() {
        assert!(matches!(
            from_str("{\"a\":1,}"),
            Err(StrictError::Malformed(_))
        ));
        assert!(matches!(from_str("{} {}"), Err(StrictError::Malformed(_))));
        let deep = "[".repeat(10_000);
        assert!(matches!(from_str(&deep), Err(StrictError::Malformed(_))));
    }
}
