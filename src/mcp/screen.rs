//! Every message on its way from stdin to the MCP session, read strictly first: a
//! `tools/call` that names a key twice (`{"size": 1, "size": 100}`) must be refused, not
//! run with the last value, and the protocol library reads JSON last-one-wins. Such a call
//! has its arguments replaced by a marker saying what was named twice, and the tool
//! answers with an error that says so. Every other line passes through byte for byte.

use crate::strict_json::{self, StrictError};
use rmcp::model::JsonObject;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The pipe between the screen and the session.
pub const BUFFER: usize = 64 * 1024;

/// Lines longer than this are passed on unread: the session drops them (its own limit).
const MAX_LINE: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;

/// The argument that carries the refusal to the tool (no tool's schema has it).
const MARKER: &str = "$duplicate_key";

/// Copy `input` to `output` line by line, screening each, until `input` ends.
pub async fn run<R, W>(input: R, mut output: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    // Inside a line over the limit: pass the rest of it on as it comes.
    let mut overlong = false;
    loop {
        line.clear();
        let limit = (MAX_LINE + 1) as u64;
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let complete = line.ends_with(b"\n");
        let out = if overlong || !complete {
            // Part of a line too long to read (or the last one, cut short): as it is.
            overlong = !complete && line.len() > MAX_LINE;
            std::borrow::Cow::Borrowed(&line[..])
        } else {
            screen(&line)
        };
        if output.write_all(&out).await.is_err() {
            break;
        }
        if !complete && !overlong {
            break;
        }
    }
    let _ = output.shutdown().await;
}

/// The line to pass on for one complete line.
fn screen(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    // Cheap first: only a tool call is screened.
    if !line.windows(10).any(|w| w == b"tools/call") {
        return Cow::Borrowed(line);
    }
    let Err(StrictError::Duplicate { key, within }) = strict_json::from_slice(line) else {
        return Cow::Borrowed(line);
    };
    let Ok(mut message) = serde_json::from_slice::<Value>(line) else {
        return Cow::Borrowed(line);
    };
    if message.get("method").and_then(Value::as_str) != Some("tools/call") {
        return Cow::Borrowed(line);
    }
    let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) else {
        return Cow::Borrowed(line);
    };
    let what = StrictError::Duplicate { key, within }.to_string();
    params.insert("arguments".into(), serde_json::json!({ MARKER: what }));
    let mut text = message.to_string().into_bytes();
    text.push(b'\n');
    Cow::Owned(text)
}

/// What was named twice in this call's message, when the screen found that.
pub fn duplicate_in(arguments: Option<&JsonObject>) -> Option<String> {
    arguments?.get(MARKER)?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_with_a_key_named_twice_carries_the_marker() {
        let line = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"execute_trade","arguments":{"symbol":"BTC/USD","side":"buy","size":1,"size":100}}}
"#;
        let out = screen(line);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["params"]["name"], "execute_trade");
        let args = v["params"]["arguments"].as_object().unwrap();
        assert_eq!(
            duplicate_in(Some(args)).as_deref(),
            Some(r#"duplicate key "size" in params.arguments"#)
        );
        assert!(out.ends_with(b"\n"));
    }

    #[test]
    fn other_lines_pass_unchanged() {
        for line in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_status","arguments":{}}}
"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"a":1,"a":2}}
"#,
            b"not json tools/call\n",
        ] {
            assert_eq!(&*screen(line), line);
        }
    }

    #[tokio::test]
    async fn the_copy_ends_with_its_input() {
        let input: &[u8] =
            b"one\n{\"method\":\"tools/call\",\"params\":{\"arguments\":{\"a\":1,\"a\":2}}}\nlast";
        let mut out = Vec::new();
        run(input, &mut out).await;
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("one\n"), "{text}");
        assert!(text.contains(MARKER), "{text}");
        assert!(text.ends_with("last"), "{text}");
    }
}
