//! `assets/openapi.yaml` as a checker of real responses: a reader for the YAML the document
//! is written in (block and flow mappings and sequences, quoted and plain scalars, `|`/`>`
//! blocks, comments; no anchors or tags), and a validator for the OpenAPI 3.0 schema words it
//! uses (`$ref`, `allOf`, `type`, `nullable`, `enum`, `properties`, `required`,
//! `additionalProperties`, `items`, `minimum`/`maximum`/`exclusiveMinimum`, `minLength`/
//! `maxLength`, `minItems`, `uniqueItems`, `pattern`).
#![allow(dead_code)]

use serde_json::{Map, Value};

// ---------------------------------------------------------------- YAML

struct Line {
    indent: usize,
    text: String,
}

/// The YAML text as one JSON value.
pub fn parse_yaml(text: &str) -> Value {
    let lines: Vec<Line> = text
        .lines()
        .map(|l| Line {
            indent: l.len() - l.trim_start().len(),
            text: l.trim_start().to_string(),
        })
        .collect();
    let mut pos = 0;
    skip_blank(&lines, &mut pos);
    let indent = lines[pos].indent;
    block(&lines, &mut pos, indent)
}

fn is_blank(l: &Line) -> bool {
    l.text.is_empty() || l.text.starts_with('#')
}

fn skip_blank(lines: &[Line], pos: &mut usize) {
    while *pos < lines.len() && is_blank(&lines[*pos]) {
        *pos += 1;
    }
}

/// A comment starts at a `#` after a space, outside quotes and flow brackets' strings.
fn strip_comment(s: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = s.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'\'' if !double => single = !single,
            b'"' if !single && (i == 0 || bytes[i - 1] != b'\\') => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1] == b' ') => {
                return s[..i].trim_end();
            }
            _ => {}
        }
    }
    s.trim_end()
}

fn block(lines: &[Line], pos: &mut usize, indent: usize) -> Value {
    skip_blank(lines, pos);
    if *pos < lines.len() && lines[*pos].text.starts_with("- ") || lines[*pos].text == "-" {
        sequence(lines, pos, indent)
    } else {
        mapping(lines, pos, indent, None)
    }
}

fn sequence(lines: &[Line], pos: &mut usize, indent: usize) -> Value {
    let mut out = Vec::new();
    loop {
        skip_blank(lines, pos);
        if *pos >= lines.len() || lines[*pos].indent != indent || !lines[*pos].text.starts_with('-')
        {
            return Value::Array(out);
        }
        let rest = lines[*pos].text[1..].trim_start().to_string();
        let inner = indent + 1 + (lines[*pos].text.len() - 1 - rest.len());
        if rest.is_empty() {
            *pos += 1;
            let next = lines[*pos].indent;
            out.push(block(lines, pos, next));
        } else if rest.starts_with('{') || rest.starts_with('[') || key_split(&rest).is_none() {
            *pos += 1;
            out.push(scalar_or_flow(lines, pos, &rest, indent));
        } else {
            out.push(mapping(lines, pos, inner, Some(rest)));
        }
    }
}

/// `key: value` split at the first `: ` (or a final `:`) outside quotes and brackets.
fn key_split(s: &str) -> Option<(String, String)> {
    let (mut single, mut double, mut depth) = (false, false, 0i32);
    let bytes = s.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'{' | b'[' if !single && !double => depth += 1,
            b'}' | b']' if !single && !double => depth -= 1,
            b':' if !single
                && !double
                && depth == 0
                && (i + 1 == bytes.len() || bytes[i + 1] == b' ') =>
            {
                let key = unquote(s[..i].trim());
                return Some((key, s[i + 1..].trim().to_string()));
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> String {
    match plain_or_quoted(s) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A mapping at `indent`; `first` is an entry already cut from its line (after `- `).
fn mapping(lines: &[Line], pos: &mut usize, indent: usize, first: Option<String>) -> Value {
    let mut out = Map::new();
    let mut pending = first;
    loop {
        let text = match pending.take() {
            Some(t) => t,
            None => {
                skip_blank(lines, pos);
                if *pos >= lines.len() || lines[*pos].indent != indent {
                    return Value::Object(out);
                }
                lines[*pos].text.clone()
            }
        };
        let text = strip_comment(&text).to_string();
        let Some((key, value)) = key_split(&text) else {
            panic!("openapi.yaml: not a `key: value` line: {text:?}");
        };
        *pos += 1;
        let v = if value.is_empty() {
            skip_blank(lines, pos);
            if *pos < lines.len() && lines[*pos].indent > indent {
                let inner = lines[*pos].indent;
                block(lines, pos, inner)
            } else if *pos < lines.len()
                && lines[*pos].indent == indent
                && lines[*pos].text.starts_with("- ")
            {
                sequence(lines, pos, indent)
            } else {
                Value::Null
            }
        } else if value.starts_with('|') || value.starts_with('>') {
            let mut parts = Vec::new();
            while *pos < lines.len() && (lines[*pos].text.is_empty() || lines[*pos].indent > indent)
            {
                parts.push(lines[*pos].text.clone());
                *pos += 1;
            }
            Value::String(parts.join(if value.starts_with('|') { "\n" } else { " " }))
        } else {
            scalar_or_flow(lines, pos, &value, indent)
        };
        // YAML keeps the last of two equal keys: a second `schemas:` would hide the first.
        assert!(
            out.insert(key.clone(), v).is_none(),
            "openapi.yaml: the key {key:?} appears twice in one mapping"
        );
    }
}

/// A value on its line: a flow collection (perhaps over more lines) or a scalar.
fn scalar_or_flow(lines: &[Line], pos: &mut usize, value: &str, indent: usize) -> Value {
    let mut text = strip_comment(value).to_string();
    if text.starts_with('{') || text.starts_with('[') {
        while !balanced(&text) {
            assert!(
                *pos < lines.len() && lines[*pos].indent > indent,
                "openapi.yaml: unclosed {text:?}"
            );
            text.push(' ');
            text.push_str(strip_comment(&lines[*pos].text));
            *pos += 1;
        }
        let mut chars: Vec<char> = text.chars().collect();
        chars.push(' ');
        let mut i = 0;
        return flow(&chars, &mut i);
    }
    plain_or_quoted(&text)
}

fn balanced(s: &str) -> bool {
    let (mut depth, mut single, mut double) = (0i32, false, false);
    for c in s.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '{' | '[' if !single && !double => depth += 1,
            '}' | ']' if !single && !double => depth -= 1,
            _ => {}
        }
    }
    depth == 0
}

fn skip_ws(c: &[char], i: &mut usize) {
    while *i < c.len() && c[*i].is_whitespace() {
        *i += 1;
    }
}

fn flow(c: &[char], i: &mut usize) -> Value {
    skip_ws(c, i);
    match c[*i] {
        '{' => {
            *i += 1;
            let mut out = Map::new();
            loop {
                skip_ws(c, i);
                if c[*i] == '}' {
                    *i += 1;
                    return Value::Object(out);
                }
                let key = match flow_scalar(c, i, true) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                skip_ws(c, i);
                assert_eq!(c[*i], ':', "openapi.yaml: flow key {key:?} without ':'");
                *i += 1;
                let v = flow(c, i);
                assert!(
                    out.insert(key.clone(), v).is_none(),
                    "openapi.yaml: the key {key:?} appears twice in one mapping"
                );
                skip_ws(c, i);
                if c[*i] == ',' {
                    *i += 1;
                }
            }
        }
        '[' => {
            *i += 1;
            let mut out = Vec::new();
            loop {
                skip_ws(c, i);
                if c[*i] == ']' {
                    *i += 1;
                    return Value::Array(out);
                }
                out.push(flow(c, i));
                skip_ws(c, i);
                if c[*i] == ',' {
                    *i += 1;
                }
            }
        }
        _ => flow_scalar(c, i, false),
    }
}

fn flow_scalar(c: &[char], i: &mut usize, key: bool) -> Value {
    skip_ws(c, i);
    if c[*i] == '"' || c[*i] == '\'' {
        let q = c[*i];
        let start = *i;
        *i += 1;
        while c[*i] != q || (q == '"' && c[*i - 1] == '\\') {
            *i += 1;
        }
        *i += 1;
        let s: String = c[start..*i].iter().collect();
        return plain_or_quoted(&s);
    }
    let start = *i;
    while *i < c.len() {
        let ch = c[*i];
        if ch == ',' || ch == '}' || ch == ']' {
            break;
        }
        if key && ch == ':' {
            break;
        }
        if ch == ':' && c.get(*i + 1).is_some_and(|n| n.is_whitespace()) && !key {
            break;
        }
        *i += 1;
    }
    let s: String = c[start..*i].iter().collect();
    plain_or_quoted(s.trim())
}

fn plain_or_quoted(s: &str) -> Value {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        return serde_json::from_str::<String>(s)
            .map(Value::String)
            .unwrap_or_else(|_| Value::String(s[1..s.len() - 1].to_string()));
    }
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        return Value::String(s[1..s.len() - 1].replace("''", "'"));
    }
    match s {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" | "~" | "" => return Value::Null,
        _ => {}
    }
    if let Ok(n) = s.parse::<i64>() {
        return Value::from(n);
    }
    if s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-')
        && let Ok(f) = s.parse::<f64>()
        && s.matches('.').count() <= 1
    {
        return Value::from(f);
    }
    Value::String(s.to_string())
}

// ---------------------------------------------------------------- the document

pub struct Document {
    pub doc: Value,
}

impl Document {
    pub fn load() -> Document {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/openapi.yaml"),
        )
        .unwrap();
        Document {
            doc: parse_yaml(&text),
        }
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let mut at = &self.doc;
                for part in r.trim_start_matches("#/").split('/') {
                    at = at
                        .get(part)
                        .unwrap_or_else(|| panic!("openapi.yaml: no {r}"));
                }
                self.resolve(at)
            }
            None => v,
        }
    }

    /// The path template that `path` (no query) is an instance of.
    pub fn template(&self, path: &str) -> Option<String> {
        let paths = self.doc["paths"].as_object()?;
        let segs: Vec<&str> = path.split('/').collect();
        paths
            .keys()
            .find(|t| {
                let ts: Vec<&str> = t.split('/').collect();
                ts.len() == segs.len()
                    && ts
                        .iter()
                        .zip(&segs)
                        .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
            })
            .cloned()
    }

    /// What is wrong with answering `status` and `body` to `method path`, by the document.
    pub fn check(&self, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
        let path = path.split('?').next().unwrap_or(path);
        let Some(template) = self.template(path) else {
            return vec![format!("{path}: no such path in the document")];
        };
        let op = &self.doc["paths"][&template][method.to_ascii_lowercase()];
        if op.is_null() {
            return vec![format!("{method} {template}: not in the document")];
        }
        let Some(resp) = op["responses"].get(status.to_string()) else {
            return vec![format!(
                "{method} {template}: {status} is sent but not declared"
            )];
        };
        let resp = self.resolve(resp);
        let schema = &resp["content"]["application/json"]["schema"];
        if schema.is_null() {
            if body.is_null() {
                return vec![];
            }
            return vec![format!(
                "{method} {template} {status}: a JSON body is sent but not described"
            )];
        }
        let mut errors = Vec::new();
        self.validate(schema, body, "body", &mut errors);
        errors
            .into_iter()
            .map(|e| format!("{method} {template} {status}: {e}"))
            .collect()
    }

    pub fn validate(&self, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.validate(s, v, at, errors);
            }
        }
        if v.is_null() {
            if schema["nullable"] != true && schema.get("type").is_some() {
                errors.push(format!("{at}: null, and not nullable"));
            }
            return;
        }
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            let ok = match t {
                "string" => v.is_string(),
                "number" => v.is_number(),
                "integer" => v.is_i64() || v.is_u64(),
                "boolean" => v.is_boolean(),
                "array" => v.is_array(),
                "object" => v.is_object(),
                other => {
                    errors.push(format!("{at}: unknown type {other:?} in the document"));
                    true
                }
            };
            if !ok {
                errors.push(format!("{at}: {v} is not of type {t}"));
                return;
            }
        } else if schema.get("type").is_some() {
            errors.push(format!(
                "{at}: the document's type {} is not one OpenAPI 3.0 type",
                schema["type"]
            ));
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            errors.push(format!("{at}: {v} is not one of {e:?}"));
        }
        if let Some(n) = v.as_f64() {
            let exclusive = schema["exclusiveMinimum"] == true;
            if let Some(min) = schema["minimum"].as_f64()
                && (n < min || (exclusive && n == min))
            {
                errors.push(format!("{at}: {n} is under the minimum {min}"));
            }
            if let Some(max) = schema["maximum"].as_f64()
                && n > max
            {
                errors.push(format!("{at}: {n} is over the maximum {max}"));
            }
        }
        if let Some(s) = v.as_str() {
            let chars = s.chars().count() as u64;
            if schema["minLength"].as_u64().is_some_and(|m| chars < m) {
                errors.push(format!("{at}: {s:?} is shorter than minLength"));
            }
            if schema["maxLength"].as_u64().is_some_and(|m| chars > m) {
                errors.push(format!("{at}: {s:?} is longer than maxLength"));
            }
            if let Some(p) = schema["pattern"].as_str() {
                let re = regex::Regex::new(p)
                    .unwrap_or_else(|e| panic!("openapi.yaml: pattern {p:?}: {e}"));
                if !re.is_match(s) {
                    errors.push(format!("{at}: {s:?} does not match {p:?}"));
                }
            }
        }
        if let Some(items) = v.as_array() {
            if schema["minItems"]
                .as_u64()
                .is_some_and(|m| (items.len() as u64) < m)
            {
                errors.push(format!("{at}: fewer items than minItems"));
            }
            if schema["uniqueItems"] == true {
                for (i, x) in items.iter().enumerate() {
                    if items[..i].contains(x) {
                        errors.push(format!("{at}: {x} appears twice"));
                    }
                }
            }
            if let Some(s) = schema.get("items") {
                for (i, x) in items.iter().enumerate() {
                    self.validate(s, x, &format!("{at}[{i}]"), errors);
                }
            }
        }
        if let Some(obj) = v.as_object() {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        errors.push(format!("{at}: the required {r:?} is missing"));
                    }
                }
            }
            for (k, x) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => self.validate(s, x, &format!("{at}.{k}"), errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errors.push(format!("{at}: {k:?} is not in the document"))
                        }
                        Some(s @ Value::Object(_)) => {
                            self.validate(s, x, &format!("{at}.{k}"), errors)
                        }
                        _ => {}
                    },
                }
            }
        }
    }
}
