//! The runbook CLI (`crs-restore-cli`): sends signed restore requests, follows them with signed
//! status queries (`--wait`, `status`, `tasks`), and signs bodies and events.
//!
//! The binary only collects the process environment and calls [`run`]; everything else lives
//! here so tests drive it in-process with their own key, writers and retry delays.

mod args;
mod key;
mod restore;
mod sign;
mod wait;

use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use clap::Parser as _;

pub use args::{Cli, Command};
pub use wait::WaitStyle;

/// The environment variable that holds the `whsec_` signing key.
pub const KEY_ENV: &str = "CRS_RESTORE_SIGNING_KEY";

/// Exit codes, documented in `--help` and docs/RUNBOOK.md; scripts branch on them.
pub mod exit {
    /// The function answered 2xx (or a sign command printed its output).
    pub const OK: u8 = 0;
    /// The function answered 4xx/5xx: it refused or failed the request.
    pub const REFUSED: u8 = 1;
    /// Bad arguments or configuration (key, files, URL); nothing was sent.
    pub const USAGE: u8 = 2;
    /// The function could not be reached, or did not answer in time.
    pub const UNREACHABLE: u8 = 3;
    /// `restore --wait`: the restore was still running when `--timeout-wait` ran out.
    pub const STILL_RUNNING: u8 = 4;
}

/// Waits before the second and the third attempt of a retryable request.
pub const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// What [`run`] needs from the process: the key variable's value and where to write.
pub struct Context<'a> {
    /// The value of [`KEY_ENV`], if set.
    pub key_env: Option<String>,
    pub stdout: &'a mut (dyn Write + Send),
    pub stderr: &'a mut (dyn Write + Send),
    /// Waits between attempts; also bounds how many retries there are (one per entry).
    pub retry_delays: Vec<Duration>,
    /// How `restore --wait` polls and shows progress.
    pub wait: WaitStyle,
}

impl<'a> Context<'a> {
    pub fn new(
        key_env: Option<String>,
        stdout: &'a mut (dyn Write + Send),
        stderr: &'a mut (dyn Write + Send),
    ) -> Self {
        Self { key_env, stdout, stderr, retry_delays: RETRY_DELAYS.to_vec(), wait: WaitStyle::default() }
    }
}

/// A failure that ends the command: what to tell the operator and which exit code to use.
#[derive(Debug)]
pub(crate) struct Fatal {
    pub code: u8,
    pub message: String,
}

impl Fatal {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self { code: exit::USAGE, message: message.into() }
    }
}

/// Parses `args` (program name first) and runs the command; returns the process exit code.
pub async fn run<I, T>(args: I, ctx: Context<'_>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" to clap but successes to the operator.
            let (code, out): (u8, &mut (dyn Write + Send)) =
                if e.use_stderr() { (exit::USAGE, ctx.stderr) } else { (exit::OK, ctx.stdout) };
            let _ = write!(out, "{}", e.render());
            return code;
        }
    };
    let Context { key_env, stdout, stderr, retry_delays, wait } = ctx;
    let result = match cli.command {
        Command::Restore(a) => restore::run(a, key_env.as_deref(), stdout, stderr, &retry_delays, &wait).await,
        Command::Status(a) => wait::status(a, key_env.as_deref(), stdout, stderr, &retry_delays).await,
        Command::Tasks(a) => wait::tasks(a, key_env.as_deref(), stdout, stderr, &retry_delays).await,
        Command::Sign(a) => sign::sign(a, key_env.as_deref(), stdout, stderr),
        Command::SignEvent(a) => sign::sign_event(a, key_env.as_deref(), stdout, stderr),
    };
    match result {
        Ok(code) => code,
        Err(fatal) => {
            let _ = writeln!(stderr, "crs-restore-cli: {}", fatal.message);
            fatal.code
        }
    }
}

/// A new delivery id: `msg_` and 24 random letters and digits, like the Standard Webhooks libraries.
pub fn new_delivery_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = String::from("msg_");
    for _ in 0..24 {
        id.push(char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_delivery_ids_are_msg_and_24_alphanumerics_and_differ() {
        let a = new_delivery_id();
        let b = new_delivery_id();
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("msg_") && a[4..].bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }
}
