//! The one table of Tencent error codes the sandbox answers, in both wire formats.
//!
//! Real checks and injected faults both go through [`ApiError`], so a fault named
//! `PasswordError` is byte-for-byte what a wrong password produces.

/// One error as Tencent spells it in API 2.0 (`code` + `codeDesc`) and API 3.0 (`Error.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErrorCode {
    /// The short name used in faults and in `codeDesc`.
    pub name: &'static str,
    pub v2_code: i64,
    pub v3_code: &'static str,
    pub message: &'static str,
}

/// Business codes from the RestoreInstance docs (v2 table and the inferred v3 mapping), then the
/// common codes. Rows after `InternalError` are the sandbox's choice for common failures the
/// docs name only in API 3.0; in API 2.0 they all collapse into 4000/4100/4105 as documented.
pub(crate) const ERROR_CODES: &[ErrorCode] = &[
    ErrorCode {
        name: "InvalidParameter",
        v2_code: 11201,
        v3_code: "InvalidParameter.InvalidParameter",
        message: "invalid business parameter",
    },
    ErrorCode {
        name: "InstanceNotExists",
        v2_code: 10701,
        v3_code: "ResourceNotFound.InstanceNotExists",
        message: "no instance found for the serialId",
    },
    ErrorCode {
        name: "InstanceLockedError",
        v2_code: 10707,
        v3_code: "ResourceUnavailable.InstanceLockedError",
        message: "the instance is locked by another process; retry later",
    },
    ErrorCode {
        name: "InstanceStatusAbnormal",
        v2_code: 10702,
        v3_code: "ResourceUnavailable.InstanceStatusAbnormal",
        message: "abnormal instance status (in process, isolated or deleted)",
    },
    ErrorCode {
        name: "BackupStatusAbnormal",
        v2_code: 10711,
        v3_code: "ResourceUnavailable.BackupStatusAbnormal",
        message: "abnormal backup status; the backup may be expired or deleted",
    },
    ErrorCode {
        name: "BackupLockedError",
        v2_code: 10710,
        v3_code: "ResourceUnavailable.BackupLockedError",
        message: "the backup is locked by another task",
    },
    ErrorCode {
        name: "PasswordError",
        v2_code: 10712,
        v3_code: "InvalidParameterValue.PasswordError",
        message: "wrong instance password",
    },
    ErrorCode {
        name: "BackupNotExists",
        v2_code: 11213,
        v3_code: "InvalidParameterValue.BackupNotExists",
        message: "no backup of this instance found for the backupId",
    },
    ErrorCode {
        name: "AuthFailure",
        v2_code: 4100,
        v3_code: "AuthFailure.SignatureFailure",
        message: "authentication failed: the signature does not match",
    },
    ErrorCode {
        name: "SecretIdNotFound",
        v2_code: 4104,
        v3_code: "AuthFailure.SecretIdNotFound",
        message: "the SecretId does not exist or is disabled",
    },
    ErrorCode {
        name: "SignatureExpire",
        v2_code: 4500,
        v3_code: "AuthFailure.SignatureExpire",
        message: "replay attack: Timestamp too far from server time or Nonce reused",
    },
    ErrorCode {
        name: "InternalError",
        v2_code: 5100,
        v3_code: "InternalError.InternalError",
        message: "resource operation failed; retry later",
    },
    ErrorCode {
        name: "MissingParameter",
        v2_code: 4000,
        v3_code: "MissingParameter",
        message: "a required parameter is missing",
    },
    ErrorCode {
        name: "MalformedRequest",
        v2_code: 4000,
        v3_code: "InvalidParameter",
        message: "invalid request parameter",
    },
    ErrorCode { name: "InvalidAction", v2_code: 4000, v3_code: "InvalidAction", message: "unknown Action" },
    ErrorCode { name: "NoSuchVersion", v2_code: 4000, v3_code: "NoSuchVersion", message: "unsupported API version" },
    ErrorCode {
        name: "InvalidAuthorization",
        v2_code: 4100,
        v3_code: "AuthFailure.InvalidAuthorization",
        message: "the Authorization header is malformed",
    },
    ErrorCode { name: "TokenFailure", v2_code: 4105, v3_code: "AuthFailure.TokenFailure", message: "token error" },
    // API 3.0 only (CloneInstances, second-level backup, and RestoreInstance's refusal of editions
    // that restore by clone): API 2.0 documents no code for them, so it answers UNKNOWN_V2_CODE.
    ErrorCode {
        name: "BackupSpecError",
        v2_code: UNKNOWN_V2_CODE,
        v3_code: "ResourceUnavailable.BackupSpecError",
        message: "backup and restore specification not supported",
    },
    ErrorCode {
        name: "UnSupportError",
        v2_code: UNKNOWN_V2_CODE,
        v3_code: "FailedOperation.UnSupportError",
        message: "the instance does not support this operation",
    },
    ErrorCode {
        name: "CheckNotPass",
        v2_code: UNKNOWN_V2_CODE,
        v3_code: "InvalidParameterValue.CheckNotPass",
        message: "parameter check failed",
    },
    ErrorCode {
        name: "SecurityGroupIdsNotExists",
        v2_code: UNKNOWN_V2_CODE,
        v3_code: "InvalidParameterValue.SecurityGroupIdsNotExists",
        message: "a security group does not exist",
    },
    ErrorCode {
        name: "InvalidSubnetId",
        v2_code: UNKNOWN_V2_CODE,
        v3_code: "InvalidParameterValue.InvalidSubnetId",
        message: "the VPC subnet does not exist",
    },
    ErrorCode {
        name: "PasswordEmpty",
        v2_code: UNKNOWN_V2_CODE,
        v3_code: "InvalidParameterValue.PasswordEmpty",
        message: "a password is required",
    },
    ErrorCode {
        name: "PasswordRuleError",
        v2_code: UNKNOWN_V2_CODE,
        v3_code: "InvalidParameterValue.PasswordRuleError",
        message: "the password does not follow the password rules",
    },
];

/// What a fault with a name missing from the table answers in API 2.0.
const UNKNOWN_V2_CODE: i64 = 99999;

/// Names of the rows above, so call sites cannot misspell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    InvalidParameter,
    InstanceNotExists,
    InstanceLockedError,
    InstanceStatusAbnormal,
    BackupStatusAbnormal,
    BackupLockedError,
    PasswordError,
    BackupNotExists,
    AuthFailure,
    SecretIdNotFound,
    SignatureExpire,
    InternalError,
    MissingParameter,
    MalformedRequest,
    InvalidAction,
    NoSuchVersion,
    InvalidAuthorization,
    TokenFailure,
    BackupSpecError,
    UnSupportError,
    CheckNotPass,
    SecurityGroupIdsNotExists,
    InvalidSubnetId,
    PasswordEmpty,
    PasswordRuleError,
}

impl Code {
    fn name(self) -> &'static str {
        match self {
            Self::InvalidParameter => "InvalidParameter",
            Self::InstanceNotExists => "InstanceNotExists",
            Self::InstanceLockedError => "InstanceLockedError",
            Self::InstanceStatusAbnormal => "InstanceStatusAbnormal",
            Self::BackupStatusAbnormal => "BackupStatusAbnormal",
            Self::BackupLockedError => "BackupLockedError",
            Self::PasswordError => "PasswordError",
            Self::BackupNotExists => "BackupNotExists",
            Self::AuthFailure => "AuthFailure",
            Self::SecretIdNotFound => "SecretIdNotFound",
            Self::SignatureExpire => "SignatureExpire",
            Self::InternalError => "InternalError",
            Self::MissingParameter => "MissingParameter",
            Self::MalformedRequest => "MalformedRequest",
            Self::InvalidAction => "InvalidAction",
            Self::NoSuchVersion => "NoSuchVersion",
            Self::InvalidAuthorization => "InvalidAuthorization",
            Self::TokenFailure => "TokenFailure",
            Self::BackupSpecError => "BackupSpecError",
            Self::UnSupportError => "UnSupportError",
            Self::CheckNotPass => "CheckNotPass",
            Self::SecurityGroupIdsNotExists => "SecurityGroupIdsNotExists",
            Self::InvalidSubnetId => "InvalidSubnetId",
            Self::PasswordEmpty => "PasswordEmpty",
            Self::PasswordRuleError => "PasswordRuleError",
        }
    }
}

pub(crate) fn lookup(name: &str) -> Option<&'static ErrorCode> {
    ERROR_CODES.iter().find(|row| row.name == name)
}

/// An error answer, independent of the wire format it will be written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub v2_code: i64,
    pub v2_desc: String,
    pub v3_code: String,
    pub message: String,
}

impl ApiError {
    /// `detail` says what exactly was wrong; the table's generic text follows it.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        let mut err = Self::named(code.name());
        let detail = detail.into();
        if !detail.is_empty() {
            err.message = format!("{detail} ({})", err.message);
        }
        err
    }

    /// A fault's error by short name; names outside the table still produce a well-formed
    /// answer so tests can exercise codes the client has never heard of.
    pub fn named(name: &str) -> Self {
        match lookup(name) {
            Some(row) => Self {
                v2_code: row.v2_code,
                v2_desc: row.name.to_owned(),
                v3_code: row.v3_code.to_owned(),
                message: row.message.to_owned(),
            },
            None => Self {
                v2_code: UNKNOWN_V2_CODE,
                v2_desc: name.to_owned(),
                v3_code: name.to_owned(),
                message: format!("{name} (injected by the sandbox)"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_exactly_one_row() {
        let all = [
            Code::InvalidParameter,
            Code::InstanceNotExists,
            Code::InstanceLockedError,
            Code::InstanceStatusAbnormal,
            Code::BackupStatusAbnormal,
            Code::BackupLockedError,
            Code::PasswordError,
            Code::BackupNotExists,
            Code::AuthFailure,
            Code::SecretIdNotFound,
            Code::SignatureExpire,
            Code::InternalError,
            Code::MissingParameter,
            Code::MalformedRequest,
            Code::InvalidAction,
            Code::NoSuchVersion,
            Code::InvalidAuthorization,
            Code::TokenFailure,
            Code::BackupSpecError,
            Code::UnSupportError,
            Code::CheckNotPass,
            Code::SecurityGroupIdsNotExists,
            Code::InvalidSubnetId,
            Code::PasswordEmpty,
            Code::PasswordRuleError,
        ];
        assert_eq!(all.len(), ERROR_CODES.len());
        for code in all {
            assert_eq!(ERROR_CODES.iter().filter(|r| r.name == code.name()).count(), 1, "{code:?}");
        }
    }

    #[test]
    fn an_unknown_fault_name_becomes_99999_in_v2_and_itself_in_v3() {
        let err = ApiError::named("LimitExceeded.Whatever");
        assert_eq!(err.v2_code, 99999);
        assert_eq!(err.v2_desc, "LimitExceeded.Whatever");
        assert_eq!(err.v3_code, "LimitExceeded.Whatever");
    }
}
