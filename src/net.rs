//! What every outbound HTTP client shares: redirects never leave the configured origin, and
//! a URL is shown or stored only with its secrets taken out.

use std::fmt;

/// What a redacted secret reads as.
pub const REDACTED: &str = "***";

/// How many redirects within the origin are followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Query parameters whose values are secrets, by a part of their name (any case).
const SECRET_PARAMS: [&str; 8] = [
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "credential",
    "auth",
];

/// `url` as it may be shown or stored: any userinfo (`user:password@`) becomes `***@`, and
/// the value of a query parameter named like a key, token, secret, password or signature
/// becomes `***`. Anything else is kept as written, so the address stays recognisable.
/// Text that is not a URL comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(REDACTED);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_len..];
    let (before_fragment, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, value)) if !value.is_empty() && is_secret_param(name) => {
                        format!("{name}={REDACTED}")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(before_fragment),
    }
    out.push_str(fragment);
    out
}

fn is_secret_param(name: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let name = decoded.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// Every URL inside `text` redacted as [`redact_url`] does: for messages that may quote an
/// address (another library's error, a line on its way to the log file).
pub fn redact_text(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme: the letters, digits, `+`, `-` and `.` just before `://`.
        let scheme_start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map(|p| p + 1)
            .unwrap_or(0);
        out.push_str(&rest[..scheme_start]);
        let url_len = rest[scheme_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(rest.len() - scheme_start);
        let url = &rest[scheme_start..scheme_start + url_len];
        // A URL in parentheses or at the end of a sentence: the closing mark is not the URL's.
        let trimmed = url.trim_end_matches([')', ',', ';', ']']);
        out.push_str(&redact_url(trimmed));
        out.push_str(&url[trimmed.len()..]);
        rest = &rest[scheme_start + url_len..];
    }
    out.push_str(rest);
    out
}

/// A URL that is displayed redacted: `{}` shows [`redact_url`] of it.
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.0))
    }
}

/// `scheme://host:port` of a URL, redacted: where a request went, without path or secrets.
pub fn origin_of(url: &reqwest::Url) -> String {
    match url.port_or_known_default() {
        Some(port) => format!(
            "{}://{}:{port}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        ),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default()),
    }
}

fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Why a redirect was not followed (the source of the request's error).
#[derive(Debug)]
pub enum RedirectRefused {
    /// To another scheme, host or port than the configured one.
    OffOrigin { from: String, to: String },
    /// More than [`MAX_REDIRECTS`] within the origin.
    TooMany { to: String },
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectRefused::OffOrigin { from, to } => write!(
                f,
                "redirected to {to}, off the configured origin {from}: not followed"
            ),
            RedirectRefused::TooMany { to } => write!(
                f,
                "more than {MAX_REDIRECTS} redirects (the last to {to}): not followed"
            ),
        }
    }
}

impl std::error::Error for RedirectRefused {}

/// The redirect policy of every outbound client: a redirect is followed only to the same
/// scheme, host and port as the request first sent (the configured address), at most
/// [`MAX_REDIRECTS`] times; any other is an error that names where it pointed.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first().cloned() else {
            return attempt.stop();
        };
        let to = redact_url(attempt.url().as_str());
        if !same_origin(&first, attempt.url()) {
            let from = origin_of(&first);
            return attempt.error(RedirectRefused::OffOrigin { from, to });
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(RedirectRefused::TooMany { to });
        }
        attempt.follow()
    })
}

/// A request error in words, without the URL reqwest puts in its own message (the caller
/// says which request it was, redacted). A refused redirect says where it pointed.
pub fn describe_error(e: &reqwest::Error) -> String {
    if let Some(r) = redirect_refused(e) {
        return r.to_string();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_decode() || e.is_body() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({})", redact_text(&detail))
    }
}

/// The refused redirect behind a request error, if that is what it was.
pub fn redirect_refused(e: &reqwest::Error) -> Option<&RedirectRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<RedirectRefused>() {
            return Some(r);
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_secret_query_values_are_redacted() {
        let cases = [
            (
                "http://admin:s3cr3t@127.0.0.1:8000",
                "http://***@127.0.0.1:8000",
            ),
            (
                "https://tok@engine.example/api?x=1",
                "https://***@engine.example/api?x=1",
            ),
            (
                "http://h/p?api_key=abc&symbol=BTC&Token=t&X-Amz-Signature=s&pwd=",
                "http://h/p?api_key=***&symbol=BTC&Token=***&X-Amz-Signature=***&pwd=",
            ),
            (
                "http://h/p?access%5Ftoken=abc#frag",
                "http://h/p?access%5Ftoken=***#frag",
            ),
            ("http://127.0.0.1:9/", "http://127.0.0.1:9/"),
            ("http://h/a@b", "http://h/a@b"),
            ("http://u:p@w@h/x?password=1", "http://***@h/x?password=***"),
            ("not a url", "not a url"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_url(raw), want, "{raw}");
        }
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        assert_eq!(
            redact_text(
                "GET http://admin:s3cr3t@127.0.0.1:8/api (http://a:b@c/?token=z), then wss://k@h:1."
            ),
            "GET http://***@127.0.0.1:8/api (http://***@c/?token=***), then wss://***@h:1."
        );
        assert_eq!(redact_text("no address here"), "no address here");
        assert_eq!(redact_text("://odd"), "://odd");
        assert_eq!(format!("{}", Shown("http://a:b@h")), "http://***@h");
    }
}
