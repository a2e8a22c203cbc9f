//! Secrets: redacting value types, the Secrets Manager client, and a TTL cache of parsed secrets.
//!
//! Secret values only ever live in [`SecretString`]/[`SecretBytes`], whose `Debug` prints
//! `[redacted]` and which have no `Display`, so a stray `{:?}` in a log or an error cannot
//! leak them. Parse errors name the secret id and the field, never the value.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use serde_json::Value;

use crate::auth::SigningKeys;
use crate::aws::SdkClient;
use crate::payload::RedisId;

/// A secret string. Deliberately not `Display`; `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The only way to read the value: grep for `expose` to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// Secret key material. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

/// Failures reading a secret. Messages carry the secret id, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {id} does not exist in Secrets Manager")]
    NotFound { id: String },
    #[error("Secrets Manager did not return secret {id}: {detail}")]
    Unavailable { id: String, detail: String },
    #[error("secret {id} is malformed: {what}")]
    Malformed { id: String, what: String },
}

/// Tencent Cloud API keys from the credentials secret.
#[derive(Debug, Clone)]
pub struct TencentCredentials {
    pub secret_id: String,
    pub secret_key: SecretString,
    /// Session token of temporary credentials (API 3.0 `X-TC-Token`).
    pub token: Option<SecretString>,
}

impl TencentCredentials {
    /// `{"secretId": "AKID...", "secretKey": "...", "token": "..."?}`.
    pub fn from_secret(id: &str, raw: &SecretString) -> Result<Self, SecretsError> {
        let malformed = |what: &str| SecretsError::Malformed { id: id.to_owned(), what: what.to_owned() };
        let v: Value = serde_json::from_str(raw.expose())
            .map_err(|_| malformed("expected a JSON object {\"secretId\": ..., \"secretKey\": ...}"))?;
        let field = |name: &str| match v.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(malformed(&format!("\"{name}\" must be a non-empty string"))),
        };
        let secret_id = field("secretId")?.ok_or_else(|| malformed("\"secretId\" is missing"))?;
        let secret_key = field("secretKey")?.ok_or_else(|| malformed("\"secretKey\" is missing"))?;
        let token = field("token")?;
        // secretId and token travel in HTTP headers (API 3.0): refuse what no header can carry.
        let header_safe = |v: &str| v.bytes().all(|b| b.is_ascii_graphic());
        if !header_safe(&secret_id) {
            return Err(malformed("\"secretId\" must be printable ASCII without spaces"));
        }
        if token.as_deref().is_some_and(|t| !header_safe(t)) {
            return Err(malformed("\"token\" must be printable ASCII without spaces"));
        }
        Ok(Self { secret_id, secret_key: SecretString::new(secret_key), token: token.map(SecretString::new) })
    }
}

/// What the instance password secret says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstancePassword {
    Password(SecretString),
    /// `{"passwordFree": true}`: the instance has no password (API 3.0 only).
    PasswordFree,
}

impl InstancePassword {
    /// Either the bare password or `{"password": "..."}` / `{"passwordFree": true}`.
    pub fn from_secret(id: &str, raw: &SecretString) -> Result<Self, SecretsError> {
        let malformed = |what: &str| SecretsError::Malformed { id: id.to_owned(), what: what.to_owned() };
        let text = raw.expose();
        // Only a JSON *object* is structured; anything else (including `{abc`) is the bare password.
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            return match (map.get("password"), map.get("passwordFree")) {
                (Some(Value::String(p)), _) if !p.is_empty() => Ok(Self::Password(SecretString::new(p.clone()))),
                (None, Some(Value::Bool(true))) => Ok(Self::PasswordFree),
                _ => {
                    Err(malformed("a JSON secret must be {\"password\": \"<non-empty>\"} or {\"passwordFree\": true}"))
                }
            };
        }
        if text.is_empty() {
            return Err(malformed("the password is empty"));
        }
        Ok(Self::Password(raw.clone()))
    }
}

/// Thin wrapper over the Secrets Manager SDK client that classifies its errors.
#[derive(Clone, Debug)]
pub struct SecretsClient {
    sdk: SdkClient<aws_sdk_secretsmanager::Client>,
    fetches: Arc<AtomicUsize>,
}

impl SecretsClient {
    pub fn new(sdk: impl Into<SdkClient<aws_sdk_secretsmanager::Client>>) -> Self {
        Self { sdk: sdk.into(), fetches: Arc::default() }
    }

    /// How many GetSecretValue calls this client has made (for tests and benchmarks).
    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    pub async fn fetch(&self, id: &str) -> Result<SecretString, SecretsError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let out = self.sdk.get().await.get_secret_value().secret_id(id).send().await.map_err(|e| classify(id, e))?;
        match out.secret_string {
            Some(s) => Ok(SecretString::new(s)),
            None => Err(SecretsError::Malformed { id: id.to_owned(), what: "it has no SecretString".into() }),
        }
    }
}

fn classify(id: &str, err: SdkError<GetSecretValueError>) -> SecretsError {
    let id = id.to_owned();
    match &err {
        SdkError::ServiceError(se) if se.err().is_resource_not_found_exception() => SecretsError::NotFound { id },
        SdkError::ServiceError(se) => SecretsError::Unavailable {
            id,
            detail: format!("{} (HTTP {})", se.err().code().unwrap_or("service error"), se.raw().status().as_u16()),
        },
        SdkError::TimeoutError(_) => SecretsError::Unavailable { id, detail: "timed out".into() },
        SdkError::DispatchFailure(d) if d.is_timeout() => SecretsError::Unavailable { id, detail: "timed out".into() },
        SdkError::DispatchFailure(_) => SecretsError::Unavailable { id, detail: "could not connect".into() },
        SdkError::ResponseError(_) => SecretsError::Unavailable { id, detail: "unreadable response".into() },
        _ => SecretsError::Unavailable { id, detail: "request failed".into() },
    }
}

/// Parsed values with their fetch time; the lock is never held across an await.
struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<V>)>>,
    flights: Mutex<HashMap<String, Arc<Flight<V>>>>,
}

/// One fetch of an id at a time. Holds the last fetch, so that those who waited for it share its
/// outcome, the failures included, instead of fetching again: 50 concurrent first requests make
/// one GetSecretValue, and one 8 s timeout, not fifty.
type Flight<V> = tokio::sync::Mutex<Option<LastFetch<V>>>;

struct LastFetch<V> {
    started: Instant,
    ended: Instant,
    outcome: Result<Arc<V>, SecretsError>,
}

impl<V> TtlCache<V> {
    fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::default(), flights: Mutex::default() }
    }

    fn get(&self, id: &str) -> Option<Arc<V>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(id).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| Arc::clone(v))
    }

    fn put(&self, id: &str, value: Arc<V>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(id.to_owned(), (Instant::now(), value));
    }

    fn flight(&self, id: &str) -> Arc<Flight<V>> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(flights.entry(id.to_owned()).or_default())
    }
}

/// Where the three kinds of secrets live.
#[derive(Debug, Clone)]
pub struct SecretIds {
    pub signing_keys: String,
    pub tencent_credentials: String,
    pub instance_password_prefix: String,
}

/// The secrets the function needs, fetched lazily and cached across warm invocations.
pub struct Secrets {
    client: SecretsClient,
    ids: SecretIds,
    signing_keys: TtlCache<SigningKeys>,
    credentials: TtlCache<TencentCredentials>,
    passwords: TtlCache<InstancePassword>,
}

impl Secrets {
    pub fn new(client: SecretsClient, ids: SecretIds, ttl: Duration) -> Self {
        Self {
            client,
            ids,
            signing_keys: TtlCache::new(ttl),
            credentials: TtlCache::new(ttl),
            passwords: TtlCache::new(ttl),
        }
    }

    pub fn client(&self) -> &SecretsClient {
        &self.client
    }

    pub async fn signing_keys(&self) -> Result<Arc<SigningKeys>, SecretsError> {
        let id = &self.ids.signing_keys;
        cached(&self.signing_keys, &self.client, id, false, |raw| SigningKeys::from_secret(id, raw)).await
    }

    /// `refresh` bypasses the cache: used once after Tencent rejects the credentials.
    pub async fn tencent_credentials(&self, refresh: bool) -> Result<Arc<TencentCredentials>, SecretsError> {
        let id = &self.ids.tencent_credentials;
        cached(&self.credentials, &self.client, id, refresh, |raw| TencentCredentials::from_secret(id, raw)).await
    }

    /// `refresh` bypasses the cache: used once after Tencent answers PasswordError.
    pub async fn instance_password(
        &self,
        redis_id: &RedisId,
        refresh: bool,
    ) -> Result<Arc<InstancePassword>, SecretsError> {
        let id = format!("{}{}", self.ids.instance_password_prefix, redis_id.as_str());
        cached(&self.passwords, &self.client, &id, refresh, |raw| InstancePassword::from_secret(&id, raw)).await
    }
}

async fn cached<V>(
    cache: &TtlCache<V>,
    client: &SecretsClient,
    id: &str,
    refresh: bool,
    parse: impl FnOnce(&SecretString) -> Result<V, SecretsError>,
) -> Result<Arc<V>, SecretsError> {
    // Taken before the cache is read: a fetch that ended since then either filled the cache or
    // is shared below, so the cache never needs a second look.
    let asked = Instant::now();
    if !refresh && let Some(v) = cache.get(id) {
        return Ok(v);
    }
    let flight = cache.flight(id);
    let mut last = flight.lock().await;
    // A fetch that was running when we asked answers us too. A refresh (the cached value was just
    // rejected) only takes one that started after it asked: an older read may predate a rotation.
    if let Some(fetch) = last.as_ref()
        && (if refresh { fetch.started >= asked } else { fetch.ended >= asked })
    {
        return fetch.outcome.clone();
    }
    let started = Instant::now();
    let outcome = match client.fetch(id).await {
        Ok(raw) => parse(&raw).map(Arc::new),
        Err(e) => Err(e),
    };
    if let Ok(v) = &outcome {
        cache.put(id, Arc::clone(v));
    }
    *last = Some(LastFetch { started, ended: Instant::now(), outcome: outcome.clone() });
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_secret_values_is_redacted() {
        let s = SecretString::new("hunter2");
        let creds = TencentCredentials { secret_id: "AKID".into(), secret_key: s.clone(), token: Some(s.clone()) };
        let printed = format!("{s:?} {creds:?} {:?}", InstancePassword::Password(s.clone()));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!format!("{:?}", SecretBytes::new(b"hunter2".to_vec())).contains("hunter2"));
    }

    #[test]
    fn an_instance_password_is_the_bare_string_or_a_password_object() {
        let p = |s: &str| InstancePassword::from_secret("x", &SecretString::new(s));
        assert_eq!(p("12D3E@!r5ed"), Ok(InstancePassword::Password(SecretString::new("12D3E@!r5ed"))));
        assert_eq!(p(r#"{"password": "pw"}"#), Ok(InstancePassword::Password(SecretString::new("pw"))));
        assert_eq!(p(r#"{"passwordFree": true}"#), Ok(InstancePassword::PasswordFree));
        assert_eq!(p("{not json"), Ok(InstancePassword::Password(SecretString::new("{not json"))));
        assert_eq!(p(r#""quoted""#), Ok(InstancePassword::Password(SecretString::new(r#""quoted""#))));
        assert!(p(r#"{"pass": "pw"}"#).is_err());
        assert!(p(r#"{"password": ""}"#).is_err());
        assert!(p("").is_err());
    }

    #[test]
    fn credential_parse_errors_name_the_field_but_never_the_value() {
        let raw = SecretString::new(r#"{"secretId": "AKIDx", "secretKey": ["sup3r-s3cret"]}"#);
        let err = TencentCredentials::from_secret("tc", &raw).expect_err("array key");
        assert!(err.to_string().contains("secretKey"));
        assert!(!err.to_string().contains("sup3r-s3cret"));
        let raw = SecretString::new("sup3r-s3cret");
        assert!(!TencentCredentials::from_secret("tc", &raw).expect_err("not json").to_string().contains("sup3r"));
        let token = SecretString::new("{\"secretId\":\"A\",\"secretKey\":\"k\",\"token\":\"t\\u007f\"}");
        let err = TencentCredentials::from_secret("tc", &token).expect_err("control character");
        assert!(err.to_string().contains("token"));
        let ok = TencentCredentials::from_secret("tc", &SecretString::new(r#"{"secretId":"A","secretKey":"k"}"#));
        assert!(ok.is_ok_and(|c| c.token.is_none()));
    }
}
