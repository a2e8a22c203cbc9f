//! `crs-bench`: the measurement behind `make bench` and `make load` (see BENCHMARKS.md).
//!
//! ```text
//! crs-bench runtime --ours BIN --hello BIN --sandbox BIN --moto URL [--events DIR] [--out DIR] [--cold N] [--warm N] [--trace-ids 0|1]
//! crs-bench load    --ours BIN --sandbox BIN --moto URL [--events DIR] [--out DIR] [--requests N] [--concurrency N]
//! crs-bench criterion [--dir target/criterion] [--out DIR]
//! ```
//! Everything listens and connects on 127.0.0.1 only; every loop is bounded.

mod backends;
mod emulator;
mod load;
mod meter;
mod proxy;
mod report;
mod runtime;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: crs-bench runtime|load|criterion [--flag value ...] (see BENCHMARKS.md)";

struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument {flag}\n{USAGE}"))?;
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            map.insert(name.to_owned(), value.clone());
        }
        Ok(Self(map))
    }

    fn path(&self, name: &str) -> Result<PathBuf, String> {
        self.0.get(name).map(PathBuf::from).ok_or_else(|| format!("--{name} is required\n{USAGE}"))
    }

    fn path_or(&self, name: &str, default: &str) -> PathBuf {
        PathBuf::from(self.0.get(name).map_or(default, String::as_str))
    }

    fn num(&self, name: &str, default: usize) -> Result<usize, String> {
        self.0.get(name).map_or(Ok(default), |v| v.parse().map_err(|e| format!("--{name} {v}: {e}")))
    }

    /// The moto endpoint; only loopback addresses are accepted.
    fn moto(&self) -> Result<String, String> {
        let url = self.0.get("moto").ok_or("--moto is required")?.trim_end_matches('/').to_owned();
        if !url.starts_with("http://127.0.0.1:") {
            return Err(format!("--moto must be http://127.0.0.1:PORT (loopback only), not {url}"));
        }
        Ok(url)
    }
}

/// Reads criterion's `estimates.json` files and prints each benchmark's median.
fn criterion_report(dir: &Path, out: &Path) -> Result<(), String> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") && path.join("estimates.json").exists() {
                    found.push(path);
                } else {
                    walk(&path, found);
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.sort();
    let mut table = report::Table::new(&["benchmark", "median", "95 % CI of the median", "budget"]);
    for new in found {
        let read = |f: &str| -> Option<serde_json::Value> {
            serde_json::from_str(&std::fs::read_to_string(new.join(f)).ok()?).ok()
        };
        let (Some(est), Some(meta)) = (read("estimates.json"), read("benchmark.json")) else { continue };
        let median = est["median"]["point_estimate"].as_f64().unwrap_or(0.0);
        let lo = est["median"]["confidence_interval"]["lower_bound"].as_f64().unwrap_or(0.0);
        let hi = est["median"]["confidence_interval"]["upper_bound"].as_f64().unwrap_or(0.0);
        let name = meta["full_id"].as_str().unwrap_or("?").to_owned();
        let fmt = |ns: f64| if ns >= 1000.0 { format!("{:.2} µs", ns / 1000.0) } else { format!("{ns:.0} ns") };
        let budget = if name.contains("whole") {
            if median <= 25_000.0 { "≤ 25 µs: yes".to_owned() } else { "≤ 25 µs: **NO**".to_owned() }
        } else {
            String::new()
        };
        table.row(vec![format!("`{name}`"), fmt(median), format!("{} – {}", fmt(lo), fmt(hi)), budget]);
    }
    let md = table.render();
    println!("{md}");
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    std::fs::write(out.join("criterion.md"), md).map_err(|e| e.to_string())
}

async fn dispatch(args: &[String]) -> Result<bool, String> {
    let (command, rest) = args.split_first().ok_or(USAGE)?;
    let flags = Flags::parse(rest)?;
    let out = flags.path_or("out", "bench/results");
    let events = flags.path_or("events", "events");
    match command.as_str() {
        "runtime" => {
            runtime::run(runtime::Opts {
                ours: flags.path("ours")?,
                hello: flags.path("hello")?,
                sandbox: flags.path("sandbox")?,
                moto: flags.moto()?,
                events,
                out,
                cold: flags.num("cold", 20)?,
                warm: flags.num("warm", 1000)?,
                trace_ids: flags.num("trace-ids", 1)? != 0,
            })
            .await?;
            Ok(true)
        }
        "load" => {
            load::run(load::Opts {
                ours: flags.path("ours")?,
                sandbox: flags.path("sandbox")?,
                moto: flags.moto()?,
                events,
                out,
                requests: flags.num("requests", 2000)?,
                concurrency: flags.num("concurrency", 50)?,
                deadline: Duration::from_secs(u64::try_from(flags.num("deadline-seconds", 600)?).unwrap_or(600)),
            })
            .await
        }
        "criterion" => {
            criterion_report(&flags.path_or("dir", "target/criterion"), &out)?;
            Ok(true)
        }
        _ => Err(USAGE.to_owned()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("crs-bench: {e}");
            ExitCode::from(2)
        }
    }
}
