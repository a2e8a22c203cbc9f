//! The `"slack"` object of the signing keys secret: who may use the Slack command, for what.
//!
//! `{"signingSecret", "teamId", "allowedUsers", "allowedChannels"?, "allow"}`. Parsed strictly
//! (unknown fields are typos that would silently widen or narrow access) and fail-closed: a
//! malformed object is a configuration error, never "Slack without restrictions".

use serde_json::{Map, Value};

use crate::auth::AllowList;
use crate::payload::RedisId;
use crate::secrets::SecretString;

/// Slack signing secrets are 32 hex characters; anything much shorter is a paste error.
const MIN_SECRET_LEN: usize = 16;

const FIELDS: &[&str] = &["signingSecret", "teamId", "allowedUsers", "allowedChannels", "allow", "clone"];

/// Slack access rules and the app's signing secret.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// Verifies requests (v0) and, through a derived key, confirmation tokens.
    pub signing_secret: SecretString,
    /// The one workspace served.
    pub team_id: String,
    pub allowed_users: Vec<String>,
    /// `None`: any channel; otherwise only these.
    pub allowed_channels: Option<Vec<String>>,
    /// Instances Slack users may restore, as for webhook keys.
    pub allow: AllowList,
    /// `"clone": true`: Slack users may restore by clone (a purchase), as for webhook keys.
    pub clone: bool,
}

impl SlackConfig {
    /// Parses the object; errors name the field, never the signing secret's value.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let Value::Object(obj) = value else {
            return Err("\"slack\" must be an object".into());
        };
        if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let name: String = unknown.chars().take(64).collect();
            return Err(format!("slack: unknown field {name:?}"));
        }
        let signing_secret = match obj.get("signingSecret") {
            Some(Value::String(s)) if s.len() >= MIN_SECRET_LEN && !s.contains(char::is_whitespace) => {
                SecretString::new(s.clone())
            }
            _ => {
                return Err(format!(
                    "slack.signingSecret must be the app's signing secret (at least {MIN_SECRET_LEN} characters, no spaces)"
                ));
            }
        };
        let team_id = match obj.get("teamId") {
            Some(Value::String(s)) if s.starts_with('T') && is_slack_id(s) => s.clone(),
            _ => return Err("slack.teamId must be a Slack workspace id such as \"T0001ABCD\"".into()),
        };
        let allowed_users = ids(obj, "allowedUsers", &['U', 'W'])?
            .ok_or_else(|| "slack.allowedUsers must list Slack user ids such as \"U0123ABCD\"".to_owned())?;
        if allowed_users.is_empty() {
            return Err("slack.allowedUsers is empty: no one could ever restore from Slack".into());
        }
        let allowed_channels = ids(obj, "allowedChannels", &['C', 'G', 'D'])?;
        let allow = match obj.get("allow") {
            Some(Value::Array(items)) => {
                let patterns: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                let patterns = patterns.ok_or_else(|| "slack.allow must list strings".to_owned())?;
                AllowList::parse(patterns).map_err(|e| format!("slack.allow: {e}"))?
            }
            _ => return Err("slack.allow must be an array of instance patterns".into()),
        };
        let clone = match obj.get("clone") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("slack.clone must be true or false".into()),
        };
        Ok(Self { signing_secret, team_id, allowed_users, allowed_channels, allow, clone })
    }

    pub fn user_allowed(&self, user_id: &str) -> bool {
        self.allowed_users.iter().any(|u| u == user_id)
    }

    pub fn channel_allowed(&self, channel_id: &str) -> bool {
        self.allowed_channels.as_ref().is_none_or(|list| list.iter().any(|c| c == channel_id))
    }

    pub fn instance_allowed(&self, redis_id: &RedisId) -> bool {
        self.allow.allows(redis_id)
    }
}

/// `Some(list)` of ids starting with one of `prefixes`; `None` when the field is absent.
fn ids(obj: &Map<String, Value>, field: &str, prefixes: &[char]) -> Result<Option<Vec<String>>, String> {
    let invalid = || {
        let shapes: Vec<String> = prefixes.iter().map(|p| format!("{p}...")).collect();
        format!("slack.{field} must be an array of Slack ids ({})", shapes.join(", "))
    };
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v.as_str() {
                Some(s) if s.starts_with(prefixes) && is_slack_id(s) => Ok(s.to_owned()),
                _ => Err(invalid()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid()),
    }
}

/// Slack ids (team, user, channel) are upper-case letters and digits.
pub fn is_slack_id(s: &str) -> bool {
    (2..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"signingSecret": "8f742231b10e8888abcd99yyyzzz85a5", "teamId": "T0001ABCD",
               "allowedUsers": ["U0123ALICE", "W0456BOB"], "allowedChannels": ["C0123OPS1"], "allow": ["crs-*"]})
    }

    #[test]
    fn the_documented_object_parses_and_channels_are_optional() {
        let c = SlackConfig::from_json(&valid()).expect("valid");
        assert_eq!(c.team_id, "T0001ABCD");
        assert!(c.user_allowed("W0456BOB") && !c.user_allowed("U0789EVE"));
        assert!(c.channel_allowed("C0123OPS1") && !c.channel_allowed("C0999XYZ"));
        assert!(c.instance_allowed(&RedisId::parse("crs-izbob1wh").expect("id")));
        let mut v = valid();
        v.as_object_mut().expect("object").remove("allowedChannels");
        assert!(SlackConfig::from_json(&v).expect("valid").channel_allowed("C0999XYZ"));
    }

    #[test]
    fn every_malformed_field_is_named_and_the_secret_never_echoed() {
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let cases: [(&str, Value); 9] = [
            ("signingSecret", json!("short")),
            ("signingSecret", json!(42)),
            ("teamId", json!("U0123ALICE")),
            ("teamId", json!("t0001abcd")),
            ("allowedUsers", json!([])),
            ("allowedUsers", json!(["alice"])),
            ("allowedChannels", json!("C0123OPS1")),
            ("allow", json!(["*-prod"])),
            ("allowedUser", json!(["U0123ALICE"])),
        ];
        for (field, bad) in cases {
            let mut v = valid();
            v[field] = bad;
            let err = SlackConfig::from_json(&v).expect_err(field);
            assert!(err.contains(field), "{field}: {err}");
            assert!(!err.contains(secret), "{err}");
        }
        let mut missing = valid();
        missing.as_object_mut().expect("object").remove("allow");
        assert!(SlackConfig::from_json(&missing).is_err());
        assert!(SlackConfig::from_json(&json!("slack")).is_err());
        assert!(!format!("{:?}", SlackConfig::from_json(&valid()).expect("valid")).contains(secret));
    }
}
