//! Who may restore what: the signing keys secret, each key's allow list of instance patterns.
//!
//! The key that verifies a request identifies the caller; its `allow` list decides which
//! instances that caller may restore. Nothing is allowed unless a pattern says so.

use serde_json::Value;

use crate::payload::RedisId;
use crate::secrets::{SecretString, SecretsError};
use crate::signature::WebhookSecret;
use crate::slack::SlackConfig;

/// One instance pattern: `*` (everything), a prefix ending in `*` (`crs-drill*`), or an exact id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Any,
    Prefix(String),
    Exact(String),
}

impl Pattern {
    /// `*` is only allowed at the end so a pattern reads the same to people and to code.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        match raw.strip_suffix('*') {
            Some("") => Ok(Self::Any),
            Some(prefix) if prefix.chars().all(valid_char) => Ok(Self::Prefix(prefix.to_owned())),
            None if !raw.is_empty() && raw.chars().all(valid_char) => Ok(Self::Exact(raw.to_owned())),
            _ => Err(format!(
                "pattern {raw:?} must be \"*\", an instance id, or a prefix of lowercase letters, digits and '-' ending in '*'"
            )),
        }
    }

    pub fn matches(&self, id: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(p) => id.starts_with(p.as_str()),
            Self::Exact(e) => id == e,
        }
    }
}

/// A list of patterns; empty allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Pattern>);

impl AllowList {
    pub fn parse<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        patterns.into_iter().map(Pattern::parse).collect::<Result<_, _>>().map(Self)
    }

    pub fn allows(&self, id: &RedisId) -> bool {
        self.0.iter().any(|p| p.matches(id.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One active webhook signing key.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub id: String,
    pub secret: WebhookSecret,
    pub allow: AllowList,
    /// `"clone": true`: the key may restore by clone, which buys a new, billed instance.
    pub clone: bool,
}

/// The signing keys secret: `{"keys": [{"id", "secret", "allow"}], "callbackSecret"?, "slack"?}`.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub keys: Vec<KeyConfig>,
    /// Signs outgoing callbacks (Standard Webhooks).
    pub callback_secret: Option<WebhookSecret>,
    /// The Slack app's signing secret and who may use it; `None` refuses every Slack request.
    pub slack: Option<SlackConfig>,
}

impl SigningKeys {
    /// Parses the secret; errors name the key id and field, never a key's value.
    pub fn from_secret(id: &str, raw: &SecretString) -> Result<Self, SecretsError> {
        let malformed = |what: String| SecretsError::Malformed { id: id.to_owned(), what };
        let doc: Value = serde_json::from_str(raw.expose())
            .map_err(|_| malformed("expected a JSON object {\"keys\": [...]}".into()))?;
        let Some(list) = doc.get("keys").and_then(Value::as_array) else {
            return Err(malformed("\"keys\" must be an array".into()));
        };
        let mut keys = Vec::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            let key_id = match entry.get("id") {
                Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => s.clone(),
                _ => {
                    return Err(malformed(format!("keys[{i}].id must be a non-empty string of at most 64 characters")));
                }
            };
            if keys.iter().any(|k: &KeyConfig| k.id == key_id) {
                return Err(malformed(format!("key id {key_id:?} appears twice")));
            }
            let secret = entry
                .get("secret")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(format!("key {key_id:?}: \"secret\" must be a whsec_ string")))
                .and_then(|s| WebhookSecret::parse(s).map_err(|e| malformed(format!("key {key_id:?}: secret {e}"))))?;
            let allow = match entry.get("allow") {
                Some(Value::Array(items)) => {
                    let strs: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    let strs = strs.ok_or_else(|| malformed(format!("key {key_id:?}: allow must list strings")))?;
                    AllowList::parse(strs).map_err(|e| malformed(format!("key {key_id:?}: {e}")))?
                }
                _ => {
                    return Err(malformed(format!("key {key_id:?}: \"allow\" must be an array of patterns")));
                }
            };
            let clone = match entry.get("clone") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(malformed(format!("key {key_id:?}: \"clone\" must be true or false"))),
            };
            keys.push(KeyConfig { id: key_id, secret, allow, clone });
        }
        if keys.is_empty() {
            return Err(malformed("\"keys\" is empty: no caller could ever be verified".into()));
        }
        let callback_secret = match doc.get("callbackSecret") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(WebhookSecret::parse(s).map_err(|e| malformed(format!("callbackSecret {e}")))?)
            }
            Some(_) => return Err(malformed("\"callbackSecret\" must be a whsec_ string".into())),
        };
        let slack = match doc.get("slack") {
            None | Some(Value::Null) => None,
            Some(v) => Some(SlackConfig::from_json(v).map_err(malformed)?),
        };
        Ok(Self { keys, callback_secret, slack })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> RedisId {
        RedisId::parse(s).expect("valid id")
    }

    #[test]
    fn patterns_match_everything_a_prefix_or_one_exact_id() {
        let allow = AllowList::parse(["crs-drill*", "crs-izbob1wh"]).expect("valid");
        assert!(allow.allows(&id("crs-drill001")));
        assert!(allow.allows(&id("crs-izbob1wh")));
        assert!(!allow.allows(&id("crs-izbob1wx")));
        assert!(AllowList::parse(["*"]).expect("valid").allows(&id("crs-anything")));
        assert!(!AllowList::default().allows(&id("crs-anything")));
    }

    #[test]
    fn a_star_anywhere_but_the_end_or_an_upper_case_pattern_is_refused() {
        for bad in ["*-drill", "crs-*-x", "CRS-*", "", "crs_x"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signing_keys_secret_parses_and_errors_never_echo_key_material() {
        let ok = SigningKeys::from_secret(
            "k",
            &SecretString::new(
                r#"{"keys":[{"id":"runbooks","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","allow":["crs-*"]}],
                    "slack": {"signingSecret": "8f742231b10e8888abcd99yyyzzz85a5", "teamId": "T0001ABCD",
                              "allowedUsers": ["U0123ALICE"], "allow": ["crs-*"]}}"#,
            ),
        )
        .expect("valid");
        assert_eq!(ok.keys[0].id, "runbooks");
        assert!(ok.callback_secret.is_none());
        assert_eq!(ok.slack.as_ref().map(|s| s.team_id.as_str()), Some("T0001ABCD"));
        let bad_slack = r#"{"keys":[{"id":"a","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","allow":["*"]}],
                            "slack": {"signingSecret": "tooshort"}}"#;
        let err = SigningKeys::from_secret("k", &SecretString::new(bad_slack)).expect_err("malformed slack");
        assert!(err.to_string().contains("slack.signingSecret") && !err.to_string().contains("tooshort"), "{err}");

        let leaked = "whsec_c2hvcnQ=";
        let err = SigningKeys::from_secret(
            "k",
            &SecretString::new(format!(r#"{{"keys":[{{"id":"a","secret":"{leaked}","allow":["*"]}}]}}"#)),
        )
        .expect_err("short key");
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        assert!(SigningKeys::from_secret("k", &SecretString::new(r#"{"keys":[]}"#)).is_err());
        let no_allow = r#"{"keys":[{"id":"a","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}"#;
        assert!(SigningKeys::from_secret("k", &SecretString::new(no_allow)).is_err());
    }
}
