//! Lambda event envelopes: which kind of invocation arrived, and the Function URL (HTTP API
//! payload v2.0) request and response shapes.
//!
//! We parse the envelope ourselves instead of through `lambda_http`, whose conversion panics
//! on a body that claims to be base64 but is not, and which cannot deliver non-HTTP events
//! (scheduled drills, our own asynchronous continuations) to the same handler.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// What invoked the function.
#[derive(Debug)]
pub enum Incoming {
    /// A Function URL request: untrusted until its signature checks out.
    Http(FunctionUrlEvent),
    /// Our own asynchronous continuation (`{"crsRestoreJob": ...}`), delivered by IAM only.
    Job(Box<crate::job::Job>),
    /// A job envelope whose content does not validate.
    InvalidJob(String),
    /// A scheduled drill (`{"drill": {...}}`), delivered by EventBridge Scheduler through IAM.
    Drill(Value),
    /// Our own deferred Slack prompt (`{"crsSlackPrompt": ...}`), delivered by IAM only.
    SlackPrompt(Box<crate::slack::PromptJob>),
    /// Anything else: not accepted.
    Unrecognized,
}

impl Incoming {
    /// Classifies by shape. A Function URL event always carries `requestContext.http`; its body
    /// is a string inside the envelope, so a URL caller can never make the envelope look like a
    /// direct (IAM-authorized) invocation.
    pub fn classify(event: Value) -> Self {
        if event.pointer("/requestContext/http/method").is_some() {
            match serde_json::from_value::<FunctionUrlEvent>(event) {
                Ok(ev) => Self::Http(ev),
                Err(_) => Self::Unrecognized,
            }
        } else if event.get("drill").is_some() {
            Self::Drill(event)
        } else if let Some(job) = event.get(crate::job::ENVELOPE_KEY) {
            match serde_json::from_value::<crate::job::Job>(job.clone()) {
                Ok(job) => Self::Job(Box::new(job)),
                Err(e) => Self::InvalidJob(e.to_string()),
            }
        } else if event.get("requestContext").is_none()
            && let Some(prompt) = event.get(crate::slack::PROMPT_ENVELOPE_KEY)
        {
            match serde_json::from_value::<crate::slack::PromptJob>(prompt.clone()) {
                Ok(prompt) => Self::SlackPrompt(Box::new(prompt)),
                Err(e) => Self::InvalidJob(e.to_string()),
            }
        } else {
            Self::Unrecognized
        }
    }
}

/// The fields of a Function URL event we use.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUrlEvent {
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
    pub request_context: RequestContext,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub http: HttpContext,
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpContext {
    pub method: String,
    #[serde(default)]
    pub source_ip: Option<String>,
}

/// Why an HTTP envelope could not become a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    InvalidBase64,
}

/// An HTTP request with its body decoded to the exact bytes the sender signed.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// Lower-case names, as Function URLs deliver them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
}

impl HttpRequest {
    /// Decodes the body, refusing oversized ones before decoding anything.
    pub fn from_event(ev: FunctionUrlEvent, max_body: usize) -> Result<Self, BodyError> {
        let headers = ev
            .headers
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_owned())))
            .collect();
        let mut req = Self {
            method: ev.request_context.http.method,
            headers,
            body: Vec::new(),
            request_id: ev.request_context.request_id,
            source_ip: ev.request_context.http.source_ip,
        };
        let raw = ev.body.unwrap_or_default();
        // Base64 grows the body by 4/3: compare the encoded length against the decoded limit.
        let encoded_limit = if ev.is_base64_encoded { max_body.div_ceil(3) * 4 } else { max_body };
        if raw.len() > encoded_limit {
            return Err(BodyError::TooLarge);
        }
        if ev.is_base64_encoded {
            match STANDARD.decode(raw.as_bytes()) {
                Ok(bytes) if bytes.len() <= max_body => req.body = bytes,
                Ok(_) => return Err(BodyError::TooLarge),
                Err(_) => return Err(BodyError::InvalidBase64),
            }
        } else {
            req.body = raw.into_bytes();
        }
        Ok(req)
    }

    /// First value of a header (names are compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the Content-Type is `essence` (case-insensitive), with or without parameters
    /// such as `; charset=utf-8`.
    pub fn content_type_is(&self, essence: &str) -> bool {
        self.header("content-type")
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(essence))
    }
}

/// A JSON answer in Function URL response form.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl HttpResponse {
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, headers: Vec::new(), body }
    }

    /// The Lambda response envelope a Function URL expects.
    pub fn into_lambda(self) -> Value {
        let mut headers = Map::new();
        headers.insert("content-type".into(), "application/json".into());
        headers.insert("cache-control".into(), "no-store".into());
        for (k, v) in self.headers {
            headers.insert(k.into(), v.into());
        }
        json!({
            "statusCode": self.status,
            "headers": headers,
            "body": self.body.to_string(),
            "isBase64Encoded": false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: &str, b64: bool) -> FunctionUrlEvent {
        serde_json::from_value(json!({
            "headers": {"Content-Type": "application/json", "x-multi": ["ignored"]},
            "body": body,
            "isBase64Encoded": b64,
            "requestContext": {"http": {"method": "POST", "sourceIp": "203.0.113.9"}, "requestId": "r-1"}
        }))
        .expect("valid event")
    }

    #[test]
    fn a_function_url_event_with_null_headers_or_a_non_string_body_is_unrecognized() {
        // Shapes a Function URL never sends (README, "The request"): not an HTTP request to answer.
        let http = json!({"requestContext": {"http": {"method": "POST", "sourceIp": "203.0.113.9"}}});
        for (field, value) in
            [("headers", Value::Null), ("body", json!({"redisId": "crs-izbob1wh"})), ("body", json!(7))]
        {
            let mut ev = http.clone();
            ev[field] = value;
            assert!(matches!(Incoming::classify(ev.clone()), Incoming::Unrecognized), "{ev}");
        }
        assert!(matches!(Incoming::classify(http), Incoming::Http(_)));
    }

    #[test]
    fn a_base64_body_is_decoded_to_the_signed_bytes() {
        let req = HttpRequest::from_event(event("eyJhIjoxfQ==", true), 1024).expect("decodes");
        assert_eq!(req.body, br#"{"a":1}"#);
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.request_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn an_undecodable_base64_body_is_an_error_not_a_panic() {
        let err = HttpRequest::from_event(event("not base64!", true), 1024).expect_err("invalid");
        assert_eq!(err, BodyError::InvalidBase64);
    }

    #[test]
    fn oversized_bodies_are_refused_before_decoding() {
        assert_eq!(HttpRequest::from_event(event(&"a".repeat(11), false), 10).expect_err("big"), BodyError::TooLarge);
        assert!(HttpRequest::from_event(event(&"a".repeat(10), false), 10).is_ok());
        let b64 = STANDARD.encode([b'x'; 11]);
        assert_eq!(HttpRequest::from_event(event(&b64, true), 10).expect_err("big"), BodyError::TooLarge);
    }

    #[test]
    fn only_events_with_an_http_request_context_are_http() {
        assert!(matches!(Incoming::classify(json!({"drill": {}})), Incoming::Drill(_)));
        assert!(matches!(Incoming::classify(json!({"other": {}})), Incoming::Unrecognized));
        // A Function URL request is HTTP whatever else it carries.
        let ev = json!({"drill": {}, "requestContext": {"http": {"method": "POST"}}});
        assert!(matches!(Incoming::classify(ev), Incoming::Http(_)));
        assert!(matches!(Incoming::classify(json!({"requestContext": {"http": {}}})), Incoming::Unrecognized));
        let ev = json!({"requestContext": {"http": {"method": "GET"}}});
        assert!(matches!(Incoming::classify(ev), Incoming::Http(_)));
    }

    #[test]
    fn content_types_match_their_essence_with_or_without_parameters() {
        let with = |ct: Option<&str>| {
            let mut req = HttpRequest::from_event(event("", false), 10).expect("valid");
            req.headers = ct.map(|ct| vec![("content-type".to_owned(), ct.to_owned())]).unwrap_or_default();
            req
        };
        assert!(with(Some("application/json")).content_type_is("application/json"));
        assert!(with(Some("Application/JSON; charset=utf-8")).content_type_is("application/json"));
        assert!(!with(Some("application/x-www-form-urlencoded")).content_type_is("application/json"));
        assert!(!with(Some("application/jsonp")).content_type_is("application/json"));
        assert!(!with(None).content_type_is("application/json"));
        let form = "application/x-www-form-urlencoded";
        assert!(with(Some("Application/X-WWW-Form-Urlencoded; charset=utf-8")).content_type_is(form));
        assert!(!with(Some("application/json")).content_type_is(form));
    }

    #[test]
    fn responses_use_the_function_url_envelope() {
        let v = HttpResponse::json(202, json!({"status": "started"})).into_lambda();
        assert_eq!(v["statusCode"], 202);
        assert_eq!(v["headers"]["content-type"], "application/json");
        assert_eq!(v["body"], r#"{"status":"started"}"#);
    }
}
