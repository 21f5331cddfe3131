//! Errors as the API answers them: a status and `{"detail": "...", "field": "..."}`
//! (`detail` as the seed's FastAPI service answered; `field` when one input is to blame).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub field: Option<String>,
    /// More members of the body (e.g. the decision's current status on a 409).
    pub extra: Vec<(&'static str, Value)>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
    /// Close the connection after the answer (the request may not have been read whole).
    pub close: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            field: None,
            extra: Vec::new(),
            retry_after: None,
            close: false,
        }
    }

    /// Close the connection after this answer.
    pub fn closing(mut self) -> ApiError {
        self.close = true;
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn with(mut self, key: &'static str, value: Value) -> ApiError {
        self.extra.push((key, value));
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// Well-formed but not acceptable: unknown or missing fields, wrong types, out of range.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail).field(field)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, detail)
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!("api: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {detail}"),
        )
    }

    pub fn unknown_user(user_id: &str) -> ApiError {
        ApiError::not_found(format!(
            "no user {user_id:?}: POST /api/v1/auto-trade/config creates one"
        ))
        .field("user_id")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "detail": self.detail });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        for (k, v) in self.extra {
            body[k] = v;
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE || self.close {
            // The rest of the body is unread: close rather than read it as the next request.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"autotrade-tui\""),
            );
        }
        resp
    }
}

/// A JSON body for an input that could not be read: 400 when it is not JSON at all, 422 (naming
/// the field) when it is JSON of the wrong shape. `path` is where serde stopped ("." for the top).
pub fn from_json_error(path: &str, err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let msg = err.to_string();
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request(format!("malformed JSON in the request body: {msg}"))
        }
        Category::Data => {
            // serde names an unknown or missing field in backticks; the path stops at its parent.
            let named = ["unknown field `", "missing field `"]
                .iter()
                .find_map(|p| msg.strip_prefix(p))
                .and_then(|rest| rest.split('`').next())
                .map(str::to_string);
            let parent = if path == "." { "" } else { path };
            let field = match named {
                // The path already ends at an unknown field; a missing one is below it.
                Some(name) if parent == name || parent.ends_with(&format!(".{name}")) => {
                    parent.to_string()
                }
                Some(name) if parent.is_empty() => name,
                Some(name) => format!("{parent}.{name}"),
                None if parent.is_empty() => "body".to_string(),
                None => parent.to_string(),
            };
            let msg = strip_position(&msg);
            ApiError::invalid(field.clone(), format!("{field}: {msg}"))
        }
    }
}

/// serde_json ends data errors with " at line 1 column 42": noise for a one-line body.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}
