//! The restore request body and the domain types it parses into.
//!
//! Parsing happens only after the signature has been verified. Each type checks its value
//! once, here, so code downstream never sees an invalid instance id, backup id or region.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// What every validated string type shares: `as_str`, `Display`, and serde through `parse`
/// (so a value deserialized from a job event is validated exactly like one from a request).
macro_rules! validated_string {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

/// A CRS instance id: `crs-` followed by 8 lowercase letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedisId(String);

impl RedisId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = raw.len() == 12
            && raw.starts_with("crs-")
            && raw[4..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be \"crs-\" followed by 8 lowercase letters or digits".into())
        }
    }
}

validated_string!(RedisId);

/// A backup id as Tencent issues them: a UUID (API 2.0, e.g.
/// `e824aecc-ef5e-11e6-a2c7-525400082493`) or digits in dash-separated groups (API 3.0, e.g.
/// `678362566696298532848117` or `154572601-1165734322-153731238`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackupId(String);

impl BackupId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if is_uuid(raw) || is_numeric_backup_id(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be a backup UUID (or an API 3.0 numeric backup id)".into())
        }
    }
}

validated_string!(BackupId);

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_numeric_backup_id(s: &str) -> bool {
    (6..=64).contains(&s.len()) && s.split('-').all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Which backup to restore from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum BackupRef {
    /// The newest usable backup, resolved at restore time.
    Latest,
    Id(BackupId),
}

impl BackupRef {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw == "latest" {
            return Ok(Self::Latest);
        }
        BackupId::parse(raw).map(Self::Id).map_err(|e| format!("{e}, or \"latest\""))
    }
}

impl TryFrom<String> for BackupRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<BackupRef> for String {
    fn from(v: BackupRef) -> String {
        match v {
            BackupRef::Latest => "latest".into(),
            BackupRef::Id(id) => id.0,
        }
    }
}

/// How to restore: over the instance itself (`RestoreInstance`) or into a new instance cloned
/// from the backup (`CloneInstances`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum RestoreMode {
    #[default]
    #[serde(rename = "inPlace")]
    InPlace,
    #[serde(rename = "clone")]
    Clone,
}

impl RestoreMode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "inPlace" => Ok(Self::InPlace),
            "clone" => Ok(Self::Clone),
            _ => Err("must be \"inPlace\" or \"clone\"".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InPlace => "inPlace",
            Self::Clone => "clone",
        }
    }
}

/// A second to restore to: RFC 3339 with an explicit offset (`2026-12-01T09:41:00+08:00`),
/// whole seconds (a fraction is dropped: Tencent's `CloneTime` has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PointInTime(time::OffsetDateTime);

impl PointInTime {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let at = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
            .map_err(|_| "must be an RFC 3339 timestamp with a zone, e.g. \"2026-12-01T09:41:00+08:00\"".to_owned())?;
        Ok(Self(at.replace_nanosecond(0).unwrap_or(at)))
    }

    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn from_unix(seconds: i64) -> Option<Self> {
        time::OffsetDateTime::from_unix_timestamp(seconds).ok().map(Self)
    }

    /// Tencent's own layout for `CloneTime`: `YYYY-MM-DD HH:MM:SS`, Beijing time (UTC+8).
    pub fn tencent_clone_time(self) -> String {
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        self.0.to_offset(time::macros::offset!(+8)).format(format).unwrap_or_default()
    }

    /// RFC 3339 in UTC, as the function reports it.
    pub fn to_rfc3339(self) -> String {
        self.0
            .to_offset(time::UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
}

impl TryFrom<String> for PointInTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<PointInTime> for String {
    fn from(v: PointInTime) -> String {
        v.to_rfc3339()
    }
}

/// A Tencent region such as `ap-guangzhou` or `ap-shanghai-fsi`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (2..=32).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && !raw.ends_with('-')
            && !raw.contains("--")
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok { Ok(Self(raw.to_owned())) } else { Err("must be a Tencent region such as \"ap-guangzhou\"".into()) }
    }
}

validated_string!(Region);

/// Free text for the audit log: bounded and free of control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated restore request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest {
    pub redis_id: RedisId,
    pub backup: BackupRef,
    /// `None` means the configured default region.
    pub region: Option<Region>,
    pub reason: Option<Reason>,
    /// Raw `callbackUrl`; checked against the callback policy by the handler.
    pub callback_url: Option<String>,
    pub wait_for_completion: bool,
    pub dry_run: bool,
    pub mode: RestoreMode,
    /// Only with `mode: "clone"`; the backup then comes from second-level backup.
    pub point_in_time: Option<PointInTime>,
}

/// Why a body is not a valid restore request. All are 400s; messages name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not a JSON object: {0}")]
    MalformedJson(String),
    #[error("unknown field \"{0}\"")]
    UnknownField(String),
    #[error("field \"{0}\" appears more than once")]
    DuplicateField(String),
    #[error("field \"{0}\" is required")]
    MissingField(&'static str),
    #[error("field \"{field}\" {reason}")]
    InvalidField { field: &'static str, reason: String },
}

impl PayloadError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "MalformedJson",
            Self::UnknownField(_) => "UnknownField",
            Self::DuplicateField(_) => "DuplicateField",
            Self::MissingField(_) => "MissingField",
            Self::InvalidField { .. } => "InvalidField",
        }
    }
}

const FIELDS: &[&str] =
    &["redisId", "backupId", "region", "reason", "callbackUrl", "waitForCompletion", "dryRun", "mode", "pointInTime"];

impl RestoreRequest {
    /// Parses the raw (already verified) body.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let object = Object::parse(body)?;
        object.check_fields(FIELDS)?;
        let redis_id = object.required_str("redisId")?;
        let mode = object
            .optional_str("mode")?
            .map(RestoreMode::parse)
            .transpose()
            .map_err(|r| invalid("mode", r))?
            .unwrap_or_default();
        let point_in_time = object
            .optional_str("pointInTime")?
            .map(PointInTime::parse)
            .transpose()
            .map_err(|r| invalid("pointInTime", r))?;
        if point_in_time.is_some() && mode != RestoreMode::Clone {
            return Err(invalid(
                "pointInTime",
                "needs \"mode\": \"clone\" (a point in time is restored into a clone)".into(),
            ));
        }
        // With a point in time the backup is the second-level one covering it; a named backup
        // would contradict it, "latest" says nothing more.
        let backup = match (object.optional_str("backupId")?, point_in_time) {
            (None, None) => return Err(PayloadError::MissingField("backupId")),
            (None | Some("latest"), Some(_)) => BackupRef::Latest,
            (Some(_), Some(_)) => {
                return Err(invalid("backupId", "cannot name a backup together with pointInTime; omit one".into()));
            }
            (Some(raw), None) => BackupRef::parse(raw).map_err(|r| invalid("backupId", r))?,
        };
        Ok(Self {
            redis_id: RedisId::parse(redis_id).map_err(|r| invalid("redisId", r))?,
            backup,
            mode,
            point_in_time,
            region: object.optional_str("region")?.map(Region::parse).transpose().map_err(|r| invalid("region", r))?,
            reason: object.optional_str("reason")?.map(Reason::parse).transpose().map_err(|r| invalid("reason", r))?,
            callback_url: object.optional_str("callbackUrl")?.map(str::to_owned),
            wait_for_completion: object.optional_bool("waitForCompletion")?.unwrap_or(false),
            dry_run: object.optional_bool("dryRun")?.unwrap_or(false),
        })
    }
}

fn invalid(field: &'static str, reason: String) -> PayloadError {
    PayloadError::InvalidField { field, reason }
}

/// A JSON object that remembers every key in order, so duplicates are caught (serde_json's
/// `Value` would silently keep the last one, and a signer and a reader could disagree).
pub(crate) struct Object(Vec<(String, Value)>);

impl Object {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        serde_json::from_slice::<Self>(body).map_err(|e| PayloadError::MalformedJson(e.to_string()))
    }

    pub(crate) fn check_fields(&self, known: &[&str]) -> Result<(), PayloadError> {
        for (i, (k, _)) in self.0.iter().enumerate() {
            if !known.contains(&k.as_str()) {
                return Err(PayloadError::UnknownField(truncate(k)));
            }
            if self.0[..i].iter().any(|(prev, _)| prev == k) {
                return Err(PayloadError::DuplicateField(k.clone()));
            }
        }
        Ok(())
    }

    pub(crate) fn get(&self, field: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == field).map(|(_, v)| v)
    }

    pub(crate) fn required_str(&self, field: &'static str) -> Result<&str, PayloadError> {
        self.optional_str(field)?.ok_or(PayloadError::MissingField(field))
    }

    pub(crate) fn optional_bool(&self, field: &'static str) -> Result<Option<bool>, PayloadError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(field, "must be true or false".into())),
        }
    }

    /// `null` is treated as absent.
    pub(crate) fn optional_str(&self, field: &'static str) -> Result<Option<&str>, PayloadError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(field, "must be a string".into())),
        }
    }
}

/// Unknown field names are attacker-controlled; keep them short in messages and logs.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Object(entries))
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RestoreRequest, PayloadError> {
        RestoreRequest::parse(s.as_bytes())
    }

    #[test]
    fn the_documented_example_parses() {
        let r = parse(
            r#"{"redisId": "crs-izbob1wh", "backupId": "e824aecc-ef5e-11e6-a2c7-525400082493", "region": "ap-guangzhou", "reason": "INC-1234 cache corrupted"}"#,
        )
        .expect("valid");
        assert_eq!(r.redis_id.as_str(), "crs-izbob1wh");
        assert_eq!(r.region.as_ref().map(Region::as_str), Some("ap-guangzhou"));
        assert_eq!(r.reason.as_ref().map(Reason::as_str), Some("INC-1234 cache corrupted"));
    }

    #[test]
    fn region_and_reason_are_optional() {
        let r = parse(r#"{"redisId":"crs-izbob1wh","backupId":"678362566696298532848117"}"#).expect("valid");
        assert_eq!((r.region, r.reason), (None, None));
        assert!(!r.dry_run && !r.wait_for_completion && r.callback_url.is_none());
    }

    #[test]
    fn latest_and_the_callback_options_parse() {
        let r = parse(
            r#"{"redisId":"crs-izbob1wh","backupId":"latest","callbackUrl":"https://h.example/x","waitForCompletion":true,"dryRun":false}"#,
        )
        .expect("valid");
        assert_eq!(r.backup, BackupRef::Latest);
        assert!(r.wait_for_completion && !r.dry_run);
        assert_eq!(r.callback_url.as_deref(), Some("https://h.example/x"));
        let err = parse(r#"{"redisId":"crs-izbob1wh","backupId":"latest","dryRun":"yes"}"#).expect_err("bool");
        assert_eq!(err, PayloadError::InvalidField { field: "dryRun", reason: "must be true or false".into() });
    }

    #[test]
    fn clone_mode_and_a_point_in_time_parse_and_the_point_in_time_converts_to_beijing_time() {
        let r = parse(r#"{"redisId":"crs-izbob1wh","mode":"clone","pointInTime":"2026-12-01T09:41:00+08:00"}"#)
            .expect("valid");
        assert_eq!(r.mode, RestoreMode::Clone);
        let at = r.point_in_time.expect("given");
        assert_eq!(at.tencent_clone_time(), "2026-12-01 09:41:00");
        assert_eq!(at.to_rfc3339(), "2026-12-01T01:41:00Z");
        let utc = PointInTime::parse("2026-12-01T01:41:00.750Z").expect("valid");
        assert_eq!(utc.tencent_clone_time(), "2026-12-01 09:41:00");
        let r = parse(r#"{"redisId":"crs-izbob1wh","backupId":"latest"}"#).expect("valid");
        assert_eq!((r.mode, r.point_in_time), (RestoreMode::InPlace, None));
    }

    #[test]
    fn a_point_in_time_needs_clone_mode_a_zone_and_no_named_backup() {
        let field_of = |body: &str| match parse(body) {
            Err(PayloadError::InvalidField { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(field_of(r#"{"redisId":"crs-izbob1wh","pointInTime":"2026-12-01T09:41:00+08:00"}"#), "pointInTime");
        assert_eq!(
            field_of(r#"{"redisId":"crs-izbob1wh","mode":"clone","pointInTime":"2026-12-01 09:41:00"}"#),
            "pointInTime"
        );
        assert_eq!(
            field_of(r#"{"redisId":"crs-izbob1wh","mode":"clone","pointInTime":"2026-12-01T09:41:00"}"#),
            "pointInTime"
        );
        assert_eq!(
            field_of(
                r#"{"redisId":"crs-izbob1wh","mode":"clone","backupId":"678362566696298532848117","pointInTime":"2026-12-01T09:41:00Z"}"#
            ),
            "backupId"
        );
        assert_eq!(field_of(r#"{"redisId":"crs-izbob1wh","backupId":"latest","mode":"copy"}"#), "mode");
        assert_eq!(parse(r#"{"redisId":"crs-izbob1wh","mode":"clone"}"#), Err(PayloadError::MissingField("backupId")));
    }

    #[test]
    fn domain_types_round_trip_through_serde_and_refuse_invalid_values() {
        let id: RedisId = serde_json::from_str("\"crs-izbob1wh\"").expect("valid");
        assert_eq!(serde_json::to_string(&id).expect("serializes"), "\"crs-izbob1wh\"");
        assert!(serde_json::from_str::<RedisId>("\"crs-X\"").is_err());
        let latest: BackupRef = serde_json::from_str("\"latest\"").expect("valid");
        assert_eq!(latest, BackupRef::Latest);
    }

    #[test]
    fn each_invalid_input_names_its_field() {
        let cases: &[(&str, PayloadError)] = &[
            (r#"{"backupId":"e824aecc-ef5e-11e6-a2c7-525400082493"}"#, PayloadError::MissingField("redisId")),
            (r#"{"redisId":"crs-izbob1wh"}"#, PayloadError::MissingField("backupId")),
            (r#"{"redisId":"crs-izbob1wh","backupId":"x","extra":1}"#, PayloadError::UnknownField("extra".into())),
            (
                r#"{"redisId":"crs-izbob1wh","redisId":"crs-aaaaaaaa","backupId":"x"}"#,
                PayloadError::DuplicateField("redisId".into()),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(&parse(body).expect_err(body), want, "{body}");
        }
        let field_of = |body: &str| match parse(body) {
            Err(PayloadError::InvalidField { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            field_of(r#"{"redisId":"crs-IZBOB1WH","backupId":"e824aecc-ef5e-11e6-a2c7-525400082493"}"#),
            "redisId"
        );
        assert_eq!(
            field_of(r#"{"redisId":"crs-izbob1wh ","backupId":"e824aecc-ef5e-11e6-a2c7-525400082493"}"#),
            "redisId"
        );
        // Cyrillic "о" instead of Latin "o": a look-alike must not pass.
        assert_eq!(
            field_of(r#"{"redisId":"crs-izbоb1wh","backupId":"e824aecc-ef5e-11e6-a2c7-525400082493"}"#),
            "redisId"
        );
        assert_eq!(field_of(r#"{"redisId":5,"backupId":"e824aecc-ef5e-11e6-a2c7-525400082493"}"#), "redisId");
        assert_eq!(field_of(r#"{"redisId":"crs-izbob1wh","backupId":"e824aecc-ef5e-11e6-a2c7"}"#), "backupId");
        assert_eq!(field_of(r#"{"redisId":"crs-izbob1wh","backupId":"../../etc"}"#), "backupId");
        assert_eq!(
            field_of(r#"{"redisId":"crs-izbob1wh","backupId":"678362566696298532848117","region":"AP"}"#),
            "region"
        );
        assert_eq!(
            field_of(r#"{"redisId":"crs-izbob1wh","backupId":"678362566696298532848117","reason":"a\nb"}"#),
            "reason"
        );
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_malformed() {
        for body in ["", "[]", "\"x\"", "{", "{\"redisId\":}", "\u{0}"] {
            assert!(matches!(parse(body), Err(PayloadError::MalformedJson(_))), "{body:?}");
        }
        assert!(matches!(RestoreRequest::parse(b"{\"a\xff\":1}"), Err(PayloadError::MalformedJson(_))));
        let deep = "[".repeat(10_000);
        assert!(matches!(parse(&format!("{{\"redisId\":{deep}")), Err(PayloadError::MalformedJson(_))));
    }
}
