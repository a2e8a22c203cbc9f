//! `restore --wait` and the query commands: signed status queries until the restore ends,
//! with live progress on a terminal and timestamped lines otherwise; `status` and `tasks`.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::args::{Endpoint, StatusArgs, TasksArgs};
use super::restore::{Channel, check_url, clean, error_sentence, http_client, text};
use super::{Fatal, exit, key};
use crate::clock::{rfc3339_ms, unix_ms};

/// How `--wait` shows progress and how often it asks.
#[derive(Debug, Clone)]
pub struct WaitStyle {
    /// stdout is a terminal: a live spinner line instead of one line per change.
    pub terminal: bool,
    /// First wait between status queries; each next one is half as long again, up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

impl Default for WaitStyle {
    fn default() -> Self {
        Self { terminal: false, first_poll: Duration::from_secs(2), max_poll: Duration::from_secs(15) }
    }
}

/// The live display: a spinner line on a terminal, plain lines (written when something
/// changed, or once a minute) otherwise.
enum Display {
    Live(ProgressBar),
    Lines { last: String, at: Instant },
}

impl Display {
    fn new(terminal: bool) -> Self {
        if terminal {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Self::Live(bar)
        } else {
            Self::Lines { last: String::new(), at: Instant::now() }
        }
    }

    fn show(&mut self, line: &str, stdout: &mut (dyn Write + Send)) {
        match self {
            Self::Live(bar) => bar.set_message(line.to_owned()),
            Self::Lines { last, at } => {
                if last != line || at.elapsed() >= Duration::from_secs(60) {
                    let _ = writeln!(stdout, "{} {line}", rfc3339_ms(unix_ms()));
                    line.clone_into(last);
                    *at = Instant::now();
                }
            }
        }
    }

    fn finish(self, line: &str, stdout: &mut (dyn Write + Send)) {
        match self {
            Self::Live(bar) => {
                bar.finish_and_clear();
                let _ = writeln!(stdout, "{line}");
            }
            Self::Lines { .. } => {
                let _ = writeln!(stdout, "{} {line}", rfc3339_ms(unix_ms()));
            }
        }
    }
}

fn elapsed_text(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{s}s") }
}

/// One line about a status answer: phase, Tencent's progress, task.
fn status_line(status: &Value, elapsed: Duration) -> String {
    let phase = text(&status["phase"]).unwrap_or_else(|| "?".into());
    let progress = status["progress"].as_u64().map(|p| format!(" {p}%")).unwrap_or_default();
    let task = text(&status["taskId"]).map(|t| format!(", task {t}")).unwrap_or_default();
    let tencent = text(&status["tencentStatus"]).map(|t| format!(" (Tencent: {t})")).unwrap_or_default();
    format!("{phase}{progress}{tencent}, elapsed {}{task}", elapsed_text(elapsed))
}

/// Follows `delivery` until it ends or `limit` passes; returns the exit code.
pub(crate) async fn follow(
    channel: &Channel<'_>,
    delivery: &str,
    limit: Duration,
    style: &WaitStyle,
    retry_delays: &[Duration],
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> Result<u8, Fatal> {
    let began = Instant::now();
    let body = json!({"query": "status", "deliveryId": delivery});
    let mut display = Display::new(style.terminal);
    let mut delay = style.first_poll;
    loop {
        let (status, json, raw) = match channel.query(&body, retry_delays, stderr).await {
            Ok(answer) => answer,
            Err(fatal) => {
                display.finish(&format!("could not ask how delivery {delivery} is doing"), stdout);
                return Err(fatal);
            }
        };
        if status != 200 {
            display.finish(&format!("the status query for delivery {delivery} was refused"), stdout);
            let _ = writeln!(stderr, "{}", error_sentence(status, &json, &raw));
            return Ok(if (400..=599).contains(&status) { exit::REFUSED } else { exit::UNREACHABLE });
        }
        let line = status_line(&json, began.elapsed());
        match json["phase"].as_str() {
            Some("succeeded") => {
                let took = json["durationSeconds"].as_u64().map(|s| format!(" in {s} s")).unwrap_or_default();
                display.finish(&format!("restore succeeded{took}: {line}, delivery {delivery}"), stdout);
                return Ok(exit::OK);
            }
            Some("failed") => {
                display.finish(&format!("restore failed: {line}, delivery {delivery}"), stdout);
                let code = text(&json["error"]["code"]).unwrap_or_else(|| "RestoreFailed".into());
                let message = text(&json["error"]["message"]).unwrap_or_default();
                let _ = writeln!(stderr, "error {code}: {message}");
                return Ok(exit::REFUSED);
            }
            _ => display.show(&line, stdout),
        }
        if began.elapsed() + delay > limit {
            let phase = text(&json["phase"]).unwrap_or_default();
            display.finish(
                &format!("still {phase} after {} (--timeout-wait): {line}", elapsed_text(began.elapsed())),
                stdout,
            );
            if let Some(candidates) = json["candidates"].as_array() {
                let _ = writeln!(
                    stderr,
                    "the outcome is unknown; candidate tasks: {}",
                    clean(&Value::from(candidates.clone()).to_string())
                );
            }
            let _ = writeln!(
                stderr,
                "the restore goes on without the CLI; follow it with: crs-restore-cli status --delivery-id {delivery}"
            );
            return Ok(exit::STILL_RUNNING);
        }
        tokio::time::sleep(delay).await;
        delay = delay.mul_f64(1.5).min(style.max_poll);
    }
}

/// Sends one query from a query command; prints JSON or the refusal and returns the answer.
async fn one_query(
    endpoint: &Endpoint,
    body: Value,
    key_env: Option<&str>,
    retry_delays: &[Duration],
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> Result<Result<Value, u8>, Fatal> {
    let secret = key::load(endpoint.key.key_file.as_deref(), key_env, stderr)?;
    let url = check_url(&endpoint.url)?;
    let timeout = Duration::from_secs(endpoint.timeout);
    let client = http_client(timeout)?;
    let channel = Channel { client: &client, url: &url, secret: &secret, timeout };
    let (status, json, raw) = channel.query(&body, retry_delays, stderr).await?;
    if endpoint.json && (200..=599).contains(&status) {
        let _ = stdout.write_all(&raw);
        let _ = stdout.write_all(b"\n");
        return Ok(Err(if status == 200 { exit::OK } else { exit::REFUSED }));
    }
    if status != 200 {
        let _ = writeln!(stderr, "{}", error_sentence(status, &json, &raw));
        return Ok(Err(if (400..=599).contains(&status) { exit::REFUSED } else { exit::UNREACHABLE }));
    }
    Ok(Ok(json))
}

/// `status --delivery-id ID`: one status query; exit 0 whenever the function answered it.
pub(crate) async fn status(
    args: StatusArgs,
    key_env: Option<&str>,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
    retry_delays: &[Duration],
) -> Result<u8, Fatal> {
    let body = json!({"query": "status", "deliveryId": args.delivery_id});
    let json = match one_query(&args.endpoint, body, key_env, retry_delays, stdout, stderr).await? {
        Ok(json) => json,
        Err(code) => return Ok(code),
    };
    let get = |k: &str| text(&json[k]).unwrap_or_else(|| "-".into());
    let mut line = format!(
        "delivery {}: {} ({} of {} in {})",
        get("deliveryId"),
        get("phase"),
        get("mode"),
        get("redisId"),
        get("region")
    );
    for (label, field) in [
        ("task", "taskId"),
        ("clone", "cloneInstanceId"),
        ("Tencent status", "tencentStatus"),
        ("progress", "progress"),
        ("started", "startedAt"),
        ("finished", "finishedAt"),
        ("took s", "durationSeconds"),
    ] {
        if let Some(v) = text(&json[field]) {
            let unit = if field == "progress" { "%" } else { "" };
            line.push_str(&format!(", {label} {v}{unit}"));
        }
    }
    if json["reconciled"] == true {
        line.push_str(" (task found in Tencent's task list after the restore's answer was lost)");
    }
    let _ = writeln!(stdout, "{line}");
    if let Some(code) = text(&json["error"]["code"]) {
        let _ = writeln!(stdout, "error {code}: {}", text(&json["error"]["message"]).unwrap_or_default());
    }
    if let Some(c) = json["candidates"].as_array() {
        let _ = writeln!(stdout, "candidate tasks: {}", clean(&Value::from(c.clone()).to_string()));
    }
    if let Some(note) = text(&json["note"]) {
        let _ = writeln!(stdout, "{note}");
    }
    Ok(exit::OK)
}

/// `tasks --redis-id ID`: the instance's recent tasks, one line each.
pub(crate) async fn tasks(
    args: TasksArgs,
    key_env: Option<&str>,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
    retry_delays: &[Duration],
) -> Result<u8, Fatal> {
    let mut body = json!({"query": "tasks", "redisId": args.redis_id});
    if let Some(region) = &args.region {
        body["region"] = region.clone().into();
    }
    let json = match one_query(&args.endpoint, body, key_env, retry_delays, stdout, stderr).await? {
        Ok(json) => json,
        Err(code) => return Ok(code),
    };
    let running = if json["restoreRunning"] == true { "a restore is running" } else { "no restore is running" };
    let _ = writeln!(
        stdout,
        "{} ({}): {running}; tasks since {}",
        text(&json["redisId"]).unwrap_or_default(),
        text(&json["region"]).unwrap_or_default(),
        text(&json["since"]).unwrap_or_default()
    );
    let tasks = json["tasks"].as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        let _ = writeln!(stdout, "  (none)");
    }
    for t in &tasks {
        let field = |k: &str| text(&t[k]).unwrap_or_else(|| "-".into());
        let progress = t["progress"].as_u64().map(|p| format!(" {p}%")).unwrap_or_default();
        let _ = writeln!(
            stdout,
            "  {:<8} {:<10}{progress}  task {}  {} → {}",
            field("type"),
            field("result"),
            field("taskId"),
            field("startTime"),
            field("endTime")
        );
    }
    if let Some(note) = text(&json["note"]) {
        let _ = writeln!(stdout, "note: {note}");
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_shows_phase_progress_elapsed_and_task() {
        let s = json!({"phase": "running", "progress": 45, "taskId": 7, "tencentStatus": "running"});
        assert_eq!(status_line(&s, Duration::from_secs(83)), "running 45% (Tencent: running), elapsed 1m23s, task 7");
        assert_eq!(status_line(&json!({"phase": "accepted"}), Duration::from_secs(2)), "accepted, elapsed 2s");
    }
}
