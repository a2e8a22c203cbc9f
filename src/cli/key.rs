//! Where the signing key comes from: `--key-file` or the environment, never a flag value.
//!
//! Messages name the source and what is wrong with the value, never the value itself.

use std::io::Write;
use std::path::Path;

use super::{Fatal, KEY_ENV};
use crate::signature::WebhookSecret;

/// Loads the key: `--key-file` wins over the environment, because an explicit flag says more
/// about intent than a variable that may have been left over in the shell.
pub(crate) fn load(
    key_file: Option<&Path>,
    key_env: Option<&str>,
    stderr: &mut dyn Write,
) -> Result<WebhookSecret, Fatal> {
    if let Some(path) = key_file {
        warn_if_shared(path, stderr);
        let raw = std::fs::read_to_string(path)
            .map_err(|e| Fatal::usage(format!("cannot read the key file {}: {e}", path.display())))?;
        return parse(raw.trim(), &format!("the key file {}", path.display()));
    }
    match key_env.map(str::trim) {
        Some(raw) if !raw.is_empty() => parse(raw, KEY_ENV),
        _ => Err(Fatal::usage(format!(
            "no signing key: set {KEY_ENV} to the whsec_ key, or pass --key-file PATH (a file holding only the key)"
        ))),
    }
}

fn parse(raw: &str, source: &str) -> Result<WebhookSecret, Fatal> {
    WebhookSecret::parse(raw)
        .map_err(|why| Fatal::usage(format!("the signing key in {source} is not usable: it {why}")))
}

/// A key file others can read is worth a warning but not a refusal: the operator mid-incident
/// should still be able to restore.
#[cfg(unix)]
fn warn_if_shared(path: &Path, stderr: &mut dyn Write) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let _ = writeln!(
                stderr,
                "crs-restore-cli: warning: the key file {} has mode {mode:04o}; `chmod 600` it",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path, _stderr: &mut dyn Write) {}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_environment_key_is_used_when_no_file_is_given() {
        assert!(load(None, Some(KEY), &mut Vec::new()).is_ok());
    }

    #[test]
    fn a_missing_or_empty_key_names_both_sources() {
        for env in [None, Some(""), Some("  ")] {
            let err = load(None, env, &mut Vec::new()).expect_err("no key");
            assert_eq!(err.code, super::super::exit::USAGE);
            assert!(err.message.contains(KEY_ENV) && err.message.contains("--key-file"), "{}", err.message);
        }
    }

    #[test]
    fn an_invalid_key_is_refused_without_echoing_it() {
        let secret_looking = "whsec_notbase64!!!SECRETVALUE";
        let err = load(None, Some(secret_looking), &mut Vec::new()).expect_err("invalid");
        assert!(!err.message.contains("SECRETVALUE"), "{}", err.message);
        let err = load(None, Some("hunter2hunter2hunter2"), &mut Vec::new()).expect_err("no prefix");
        assert!(err.message.contains("whsec_") && !err.message.contains("hunter2"), "{}", err.message);
    }

    #[test]
    fn an_unreadable_key_file_is_a_usage_error() {
        let err = load(Some(Path::new("/nonexistent/key")), Some(KEY), &mut Vec::new()).expect_err("missing file");
        assert!(err.message.contains("/nonexistent/key"), "{}", err.message);
    }
}
