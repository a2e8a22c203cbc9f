//! crs-restore-cli: the runbook client for the crs-restore function (see docs/RUNBOOK.md).
//!
//! Only gathers the process's arguments, key variable and streams; `crs_restore::cli` does the rest.

use std::process::ExitCode;

use crs_restore::cli::{self, Context};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // A key that is not valid UTF-8 cannot be a whsec_ key; pass it on as such so it is
    // reported as invalid rather than as missing.
    let key = std::env::var_os(cli::KEY_ENV).map(|v| v.into_string().unwrap_or_else(|_| "<not UTF-8>".into()));
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let terminal = std::io::IsTerminal::is_terminal(&stdout);
    let mut ctx = Context::new(key, &mut stdout, &mut stderr);
    ctx.wait.terminal = terminal;
    let code = cli::run(std::env::args_os(), ctx).await;
    ExitCode::from(code)
}
