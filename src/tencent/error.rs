//! Tencent failures: transport outcomes and the API 2.0 / 3.0 error codes, classified once.
//!
//! Both API generations map onto the same [`Failure`] classes, so callers (and the public
//! error contract) never care which generation answered.

/// What kind of failure Tencent reported, independent of the API generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    InstanceNotExists,
    BackupNotExists,
    InstanceLocked,
    BackupLocked,
    InstanceStatusAbnormal,
    BackupStatusAbnormal,
    InvalidParameter,
    PasswordError,
    /// Signature, key, token or permission problems: our configuration is wrong.
    AuthFailure,
    /// RestoreInstance refused the edition's backup/restore spec: the edition restores by clone.
    InPlaceUnsupported,
    /// A purchase could not be paid.
    PaymentFailed,
    /// Sold out or not enough resources in the zone.
    CapacityUnavailable,
    /// A quota (`LimitExceeded.*`).
    QuotaExceeded,
    /// The account is not on Tencent's allow list for the action.
    NotPermitted,
    /// The instance does not support the operation (e.g. second-level backup).
    Unsupported,
    /// Anything else Tencent said no with.
    Other,
}

impl Failure {
    /// The public error `code` for known failures (the Tencent error name).
    pub fn public_name(self) -> Option<&'static str> {
        Some(match self {
            Self::InstanceNotExists => "InstanceNotExists",
            Self::BackupNotExists => "BackupNotExists",
            Self::InstanceLocked => "InstanceLockedError",
            Self::BackupLocked => "BackupLockedError",
            Self::InstanceStatusAbnormal => "InstanceStatusAbnormal",
            Self::BackupStatusAbnormal => "BackupStatusAbnormal",
            Self::InvalidParameter => "InvalidParameter",
            Self::PasswordError => "PasswordError",
            Self::AuthFailure => "TencentAuthFailure",
            Self::InPlaceUnsupported => "InPlaceRestoreUnsupported",
            Self::PaymentFailed => "ClonePaymentFailed",
            Self::CapacityUnavailable => "CloneCapacityUnavailable",
            Self::QuotaExceeded => "CloneQuotaExceeded",
            Self::NotPermitted => "CloneNotPermitted",
            Self::Unsupported => return None,
            Self::Other => return None,
        })
    }
}

/// The raw code as Tencent sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TencentCode {
    /// API 2.0 numeric `code`.
    V2(i64),
    /// API 3.0 `Response.Error.Code`, e.g. `ResourceNotFound.InstanceNotExists`.
    V3(String),
}

/// API 2.0 codes and their class. Business codes from the RestoreInstance doc; 4xxx are the
/// common authentication codes (4500 is a replay/clock rejection, still our side's fault).
const V2_CODES: &[(i64, Failure)] = &[
    (10701, Failure::InstanceNotExists),
    (11213, Failure::BackupNotExists),
    (10707, Failure::InstanceLocked),
    (10710, Failure::BackupLocked),
    (10702, Failure::InstanceStatusAbnormal),
    (10711, Failure::BackupStatusAbnormal),
    (11201, Failure::InvalidParameter),
    (4000, Failure::InvalidParameter),
    (10712, Failure::PasswordError),
    (4100, Failure::AuthFailure),
    (4101, Failure::AuthFailure),
    (4102, Failure::AuthFailure),
    (4103, Failure::AuthFailure),
    (4104, Failure::AuthFailure),
    (4105, Failure::AuthFailure),
    (4106, Failure::AuthFailure),
    (4110, Failure::AuthFailure),
    (4300, Failure::AuthFailure),
    (4500, Failure::AuthFailure),
];

/// API 3.0 codes (exact) and their class; prefixes are matched after exact codes.
const V3_CODES: &[(&str, Failure)] = &[
    ("ResourceNotFound.InstanceNotExists", Failure::InstanceNotExists),
    ("InvalidParameterValue.BackupNotExists", Failure::BackupNotExists),
    ("ResourceUnavailable.InstanceLockedError", Failure::InstanceLocked),
    ("ResourceUnavailable.BackupLockedError", Failure::BackupLocked),
    ("ResourceUnavailable.InstanceStatusAbnormal", Failure::InstanceStatusAbnormal),
    ("ResourceUnavailable.InstanceStateError", Failure::InstanceStatusAbnormal),
    ("ResourceUnavailable.BackupStatusAbnormal", Failure::BackupStatusAbnormal),
    ("InvalidParameterValue.PasswordError", Failure::PasswordError),
    ("InvalidParameter.PermissionDenied", Failure::AuthFailure),
    // RestoreInstance on an edition that restores by clone: the documented "backup/restore spec
    // not supported" code is our reading of Tencent's (undocumented) refusal.
    ("ResourceUnavailable.BackupSpecError", Failure::InPlaceUnsupported),
    // CloneInstances' purchase failures (Go SDK client.go lists them for the action).
    ("FailedOperation.PayFailed", Failure::PaymentFailed),
    ("ResourceInsufficient", Failure::CapacityUnavailable),
    ("ResourceUnavailable.SaleOut", Failure::CapacityUnavailable),
    ("ResourceUnavailable.NoServiceAvailableForThisZoneId", Failure::CapacityUnavailable),
    ("ResourceUnavailable.NoEnoughVipInVPC", Failure::CapacityUnavailable),
    // Before the UnauthorizedOperation prefix: not a credential problem, and re-reading the API
    // keys would not help.
    ("UnauthorizedOperation.UserNotInWhiteList", Failure::NotPermitted),
    ("FailedOperation.UnSupportError", Failure::Unsupported),
];

const V3_PREFIXES: &[(&str, Failure)] = &[
    ("LimitExceeded", Failure::QuotaExceeded),
    ("ResourceInsufficient", Failure::CapacityUnavailable),
    ("AuthFailure", Failure::AuthFailure),
    ("UnauthorizedOperation", Failure::AuthFailure),
    ("InvalidParameter", Failure::InvalidParameter),
    ("MissingParameter", Failure::InvalidParameter),
    ("UnknownParameter", Failure::InvalidParameter),
];

impl TencentCode {
    pub fn classify(&self) -> Failure {
        match self {
            Self::V2(code) => V2_CODES.iter().find(|(c, _)| c == code).map_or(Failure::Other, |(_, f)| *f),
            Self::V3(code) => V3_CODES
                .iter()
                .find(|(c, _)| c == code)
                .or_else(|| V3_PREFIXES.iter().find(|(p, _)| code == p || code.starts_with(&format!("{p}."))))
                .map_or(Failure::Other, |(_, f)| *f),
        }
    }

    /// JSON form for the public `tencentCode` field.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::V2(c) => (*c).into(),
            Self::V3(c) => c.clone().into(),
        }
    }
}

/// The actions that change something; every other action we call only reads.
pub const RESTORE_ACTION: &str = "RestoreInstance";
pub const CLONE_ACTION: &str = "CloneInstances";

/// A failed Tencent call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TencentError {
    /// Tencent answered and said no.
    #[error("Tencent rejected {action}: {name}: {message}")]
    Api { action: &'static str, failure: Failure, code: TencentCode, name: String, message: String },
    /// The request never left: connection refused, DNS, TLS handshake. Safe to report as not sent.
    #[error("could not reach Tencent for {action}: {detail}")]
    Unreachable { action: &'static str, detail: String },
    /// No answer in time after the request was sent: the outcome is unknown.
    #[error("Tencent did not answer {action} within {seconds} s; the outcome is unknown")]
    Timeout { action: &'static str, seconds: u64 },
    /// The connection broke after the request was sent: the outcome is unknown.
    #[error("the connection to Tencent broke during {action}; the outcome is unknown")]
    Interrupted { action: &'static str },
    #[error("Tencent answered {action} with HTTP {status}")]
    HttpStatus { action: &'static str, status: u16 },
    #[error("Tencent's answer to {action} could not be read: {detail}")]
    Malformed { action: &'static str, detail: String },
    /// A request we refuse to build, e.g. a password-free instance under API 2.0.
    #[error("{0}")]
    Config(String),
}

impl TencentError {
    pub fn failure(&self) -> Option<Failure> {
        match self {
            Self::Api { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    /// Whether the request may have reached Tencent and changed something: no answer, or an
    /// answer to RestoreInstance we cannot read (a 5xx or garbled body after the request arrived
    /// proves nothing about whether the restore began).
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Interrupted { .. } => true,
            Self::HttpStatus { action, .. } | Self::Malformed { action, .. } => {
                *action == RESTORE_ACTION || *action == CLONE_ACTION
            }
            Self::Api { .. } | Self::Unreachable { .. } | Self::Config(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_v2_business_code_has_its_v3_twin_in_the_same_class() {
        let pairs = [
            (10701, "ResourceNotFound.InstanceNotExists"),
            (10707, "ResourceUnavailable.InstanceLockedError"),
            (10702, "ResourceUnavailable.InstanceStatusAbnormal"),
            (10711, "ResourceUnavailable.BackupStatusAbnormal"),
            (10710, "ResourceUnavailable.BackupLockedError"),
            (10712, "InvalidParameterValue.PasswordError"),
            (11213, "InvalidParameterValue.BackupNotExists"),
            (11201, "InvalidParameter.InvalidParameter"),
        ];
        for (v2, v3) in pairs {
            let (a, b) = (TencentCode::V2(v2).classify(), TencentCode::V3(v3.into()).classify());
            assert_eq!(a, b, "{v2} vs {v3}");
            assert_ne!(a, Failure::Other);
        }
    }

    #[test]
    fn auth_codes_of_both_generations_are_configuration_failures() {
        for code in [4100, 4104, 4105, 4500] {
            assert_eq!(TencentCode::V2(code).classify(), Failure::AuthFailure);
        }
        for code in
            ["AuthFailure.SignatureFailure", "AuthFailure.SecretIdNotFound", "UnauthorizedOperation.NoCAMAuthed"]
        {
            assert_eq!(TencentCode::V3(code.into()).classify(), Failure::AuthFailure);
        }
    }

    #[test]
    fn an_unreadable_answer_to_a_restore_leaves_its_outcome_unknown_but_not_to_a_read() {
        let malformed = |action| TencentError::Malformed { action, detail: "no task id".into() };
        assert!(malformed("RestoreInstance").outcome_unknown());
        assert!(TencentError::HttpStatus { action: "RestoreInstance", status: 500 }.outcome_unknown());
        assert!(!malformed("DescribeTaskInfo").outcome_unknown());
        assert!(!TencentError::Unreachable { action: "RestoreInstance", detail: String::new() }.outcome_unknown());
        assert!(!TencentError::Config("bad header".into()).outcome_unknown());
    }

    #[test]
    fn purchase_failures_have_their_own_classes_and_the_allow_list_is_not_an_auth_failure() {
        let class = |c: &str| TencentCode::V3(c.into()).classify();
        assert_eq!(class("FailedOperation.PayFailed"), Failure::PaymentFailed);
        assert_eq!(class("ResourceUnavailable.SaleOut"), Failure::CapacityUnavailable);
        assert_eq!(class("ResourceInsufficient"), Failure::CapacityUnavailable);
        assert_eq!(class("LimitExceeded"), Failure::QuotaExceeded);
        assert_eq!(class("LimitExceeded.ReachTheAmountLimit"), Failure::QuotaExceeded);
        assert_eq!(class("RequestLimitExceeded"), Failure::Other);
        assert_eq!(class("UnauthorizedOperation.UserNotInWhiteList"), Failure::NotPermitted);
        assert_eq!(class("UnauthorizedOperation.NoCAMAuthed"), Failure::AuthFailure);
        assert_eq!(class("ResourceUnavailable.BackupSpecError"), Failure::InPlaceUnsupported);
        let unread = TencentError::Malformed { action: CLONE_ACTION, detail: String::new() };
        assert!(unread.outcome_unknown());
    }

    #[test]
    fn unknown_codes_are_other_and_prefixes_need_a_dot_boundary() {
        assert_eq!(TencentCode::V2(99999).classify(), Failure::Other);
        assert_eq!(TencentCode::V3("InternalError.InternalError".into()).classify(), Failure::Other);
        assert_eq!(TencentCode::V3("AuthFailureX".into()).classify(), Failure::Other);
    }
}
