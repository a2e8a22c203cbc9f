//! The command line: subcommands, flags and the help text (with the exit codes).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Signing key: the whsec_ value in env CRS_RESTORE_SIGNING_KEY, or --key-file PATH (a file holding
only the key, mode 0600). There is deliberately no flag that takes the key itself: it would end
up in shell history and in `ps`.

Exit codes:
  0  success: the function answered 2xx (or the sign command printed its output)
  1  the function refused or failed the request (4xx/5xx); its error code is printed
  2  usage or configuration error (arguments, key, files); nothing was sent
  3  the function could not be reached or did not answer in time (outcome unknown:
     retry with the same --delivery-id, which the function deduplicates)";

/// Restore a Tencent Cloud Redis (CRS) instance from a backup through the crs-restore
/// function, with Standard Webhooks signed requests.
#[derive(Debug, Parser)]
#[command(name = "crs-restore-cli", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a signed restore request to the function and report its answer.
    #[command(after_help = EXIT_CODES)]
    Restore(RestoreArgs),
    /// Print the webhook-id, webhook-timestamp and webhook-signature headers for a body, for curl.
    #[command(after_help = EXIT_CODES)]
    Sign(SignArgs),
    /// Re-sign a Function URL event file (fresh id, timestamp and signature) and print it, for
    /// `cargo lambda invoke --data-file` and `sam local invoke -e`.
    #[command(after_help = EXIT_CODES)]
    SignEvent(SignEventArgs),
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Read the whsec_ signing key from this file (surrounding whitespace is ignored) instead of
    /// env CRS_RESTORE_SIGNING_KEY.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The function's URL (its Function URL, or http://127.0.0.1:PORT for a local run).
    #[arg(long, value_name = "URL", env = "CRS_RESTORE_URL")]
    pub url: String,
    /// The instance to restore, e.g. crs-izbob1wh.
    #[arg(long, value_name = "ID")]
    pub redis_id: String,
    /// The backup to restore from: its id, or `latest` (may be left out with --point-in-time).
    #[arg(long, value_name = "ID|latest", required_unless_present = "point_in_time")]
    pub backup_id: Option<String>,
    /// `inPlace` (RestoreInstance: Redis 2.8 and CKV) or `clone` (a new, billed instance cloned
    /// from the backup: Redis 4.0 and later).
    #[arg(long, value_name = "MODE", value_parser = ["inPlace", "clone"])]
    pub mode: Option<String>,
    /// Clone to this second (RFC 3339 with a zone, e.g. 2026-12-01T09:41:00+08:00); needs
    /// --mode clone and second-level backup on the instance.
    #[arg(long, value_name = "RFC3339", requires = "mode")]
    pub point_in_time: Option<String>,
    /// The instance's region (default: the function's configured region).
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Why, for the audit log (e.g. an incident number).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// An https URL the function posts the result to; the function then answers 202 accepted at once.
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// Ask the function to wait for the restore to finish before calling back (needs --callback-url).
    #[arg(long, requires = "callback_url")]
    pub wait: bool,
    /// Check everything (signature, instance, backup, permissions) without restoring.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the function's JSON answer verbatim instead of a sentence.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=900))]
    pub timeout: u64,
    /// Reuse this webhook-id instead of a new one: retries an earlier request (same arguments) without
    /// restoring twice.
    #[arg(long, value_name = "ID", value_parser = parse_delivery_id)]
    pub delivery_id: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Sign the exact bytes of this file (send it with `curl --data-binary @FILE`).
    #[arg(long, value_name = "FILE", conflicts_with = "body", required_unless_present = "body")]
    pub body_file: Option<PathBuf>,
    /// Sign this JSON text exactly as given.
    #[arg(long, value_name = "JSON")]
    pub body: Option<String>,
    /// Use this webhook-id instead of a new one.
    #[arg(long, value_name = "ID", value_parser = parse_delivery_id)]
    pub delivery_id: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct SignEventArgs {
    /// A Function URL event JSON file, e.g. events/function-url-restore.json.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Keep the event's own webhook-id (to replay that delivery) instead of a new one.
    #[arg(long, conflicts_with = "delivery_id")]
    pub keep_id: bool,
    /// Use this webhook-id instead of a new one.
    #[arg(long, value_name = "ID", value_parser = parse_delivery_id)]
    pub delivery_id: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// The function's rule for `webhook-id`, checked here so a typo fails before anything is sent.
pub(crate) fn parse_delivery_id(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty() && raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'.');
    if ok { Ok(raw.to_owned()) } else { Err("must be 1-128 printable ASCII characters without '.' or spaces".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn delivery_ids_with_dots_spaces_or_nothing_are_refused() {
        assert!(parse_delivery_id("msg_abc").is_ok());
        for bad in ["", "a.b", "a b", "é", &"x".repeat(129)] {
            assert!(parse_delivery_id(bad).is_err(), "{bad:?}");
        }
    }
}
