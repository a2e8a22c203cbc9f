//! `crs-bench load`: signed restore requests at a fixed concurrency through the function's
//! local mode (the real handler behind a loopback HTTP server) against the sandbox and moto,
//! with as many invalid requests mixed in. Bounded in count and time; loopback only.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crs_restore::signature::WebhookSecret;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::backends::{Events, MotoSeed, Sandbox, backup_id, restore_body, unix_now};
use crate::emulator::proc_status_kib;
use crate::meter::Meter;
use crate::proxy;
use crate::report::{Table, summarize};

pub struct Opts {
    pub ours: PathBuf,
    pub sandbox: PathBuf,
    pub moto: String,
    pub events: PathBuf,
    pub out: PathBuf,
    pub requests: usize,
    pub concurrency: usize,
    pub deadline: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Valid,
    BadSignature,
    StaleTimestamp,
    MalformedBody,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Valid => "valid restore",
            Self::BadSignature => "bad signature",
            Self::StaleTimestamp => "stale timestamp",
            Self::MalformedBody => "malformed body",
        }
    }

    /// The documented answer (status, error code).
    fn expected(self) -> (u16, &'static str) {
        match self {
            Self::Valid => (202, ""),
            Self::BadSignature => (401, "InvalidSignature"),
            Self::StaleTimestamp => (401, "StaleTimestamp"),
            Self::MalformedBody => (400, "MalformedJson"),
        }
    }
}

struct Outcome {
    kind: Kind,
    latency: Duration,
    ok: bool,
    detail: String,
}

/// A key nobody configured, for the bad-signature requests.
const WRONG_KEY: &str = "whsec_d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZw==";

/// Deterministic shuffle (xorshift), so runs are comparable without a random-number crate.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = usize::try_from(seed % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}

/// Starts the function in local mode and returns (process, base URL).
async fn start_function(
    opts: &Opts,
    env: &[(String, String)],
) -> Result<(tokio::process::Child, String, tokio::task::JoinHandle<()>), String> {
    let log_path = opts.out.join("crs-restore-load.log");
    let stderr = std::fs::File::create(opts.out.join("crs-restore-load.stderr")).map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(&opts.ours)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("CRS_RESTORE_LOCAL_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("crs-restore listening on ") {
                return Some(rest.trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("crs-restore (local mode) did not print its address")?;
    // Keep draining stdout (the audit lines) into a file so the function never blocks on it.
    let drain = tokio::spawn(async move {
        let mut file = std::fs::File::create(log_path).ok();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(f) = file.as_mut() {
                use std::io::Write as _;
                let _ = writeln!(f, "{line}");
            }
        }
    });
    Ok((child, url, drain))
}

pub async fn run(opts: Opts) -> Result<bool, String> {
    std::fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| e.to_string();
    let n = opts.requests;
    let ids: Vec<String> = (0..n).map(|i| format!("crs-ld{i:06}")).collect();
    let meter = Arc::new(Meter::default());
    // Restores keep the instance locked for 10 minutes: a second restore of any instance would
    // fail, and the sandbox counts every RestoreInstance call.
    let sandbox = Sandbox::start(&opts.sandbox, &opts.out, &ids, 600_000).await.map_err(io)?;
    let moto_proxy = proxy::spawn(&opts.moto, Arc::clone(&meter), false).await.map_err(io)?;
    let sandbox_proxy = proxy::spawn(&sandbox.url, Arc::clone(&meter), true).await.map_err(io)?;
    let seed = MotoSeed::new("load");
    let seeding = Instant::now();
    seed.seed(&opts.moto, &ids).await?;
    eprintln!("seeded {} secrets and a table in moto in {:.1} s", n + 2, seeding.elapsed().as_secs_f64());
    let events = Arc::new(Events::load(&opts.events)?);
    let wrong = Arc::new(WebhookSecret::parse(WRONG_KEY).map_err(str::to_owned)?);

    let mut env: Vec<(String, String)> = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("TENCENT_API_VERSION", "2"),
        ("TENCENT_REGION", "ap-guangzhou"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.extend(seed.env());
    env.push(("AWS_ENDPOINT_URL".into(), format!("http://{moto_proxy}")));
    env.push(("TENCENT_ENDPOINT".into(), format!("http://{sandbox_proxy}/v2/index.php")));
    let (mut child, url, drain) = start_function(&opts, &env).await?;
    let pid = child.id().ok_or("no pid")?;

    // The job list: n valid restores (one per instance) and n invalid requests, three kinds.
    let invalid = [Kind::BadSignature, Kind::StaleTimestamp, Kind::MalformedBody];
    let mut jobs: Vec<(Kind, usize)> = (0..n).map(|i| (Kind::Valid, i)).collect();
    jobs.extend((0..n).map(|i| (invalid[i % 3], i)));
    shuffle(&mut jobs, 0x9E37_79B9_7F4A_7C15);
    let jobs = Arc::new(jobs);

    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(opts.concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(jobs.len())));
    let tag = format!("{}x{}", std::process::id(), unix_now());

    // Memory: VmRSS every 100 ms, with how many requests had been answered.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = proc_status_kib(pid, "VmRSS:") {
                    samples.push((done.load(Ordering::Relaxed), rss));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.concurrency {
        let (jobs, next, done, outcomes) =
            (Arc::clone(&jobs), Arc::clone(&next), Arc::clone(&done), Arc::clone(&outcomes));
        let (client, url, events, wrong, tag) =
            (client.clone(), url.clone(), Arc::clone(&events), Arc::clone(&wrong), tag.clone());
        workers.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(kind, i)) = jobs.get(k) else { break };
                let id = format!("msg_load{tag}_{k}");
                let now = unix_now();
                let (body, ts, key) = match kind {
                    Kind::Valid => (restore_body(&format!("crs-ld{i:06}"), &backup_id(i), false), now, None),
                    Kind::BadSignature => {
                        (restore_body(&format!("crs-ld{i:06}"), &backup_id(i), false), now, Some(&*wrong))
                    }
                    Kind::StaleTimestamp => {
                        (restore_body(&format!("crs-ld{i:06}"), &backup_id(i), false), now - 600, None)
                    }
                    Kind::MalformedBody => (format!("{{\"redisId\": \"crs-ld{i:06}\", \"backupId\": "), now, None),
                };
                let ev = events.event(&body, &id, ts, key);
                let header = |name: &str| ev["headers"][name].as_str().unwrap_or_default().to_owned();
                let sent = Instant::now();
                let result = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", header("webhook-id"))
                    .header("webhook-timestamp", header("webhook-timestamp"))
                    .header("webhook-signature", header("webhook-signature"))
                    .body(body)
                    .send()
                    .await;
                let (status, answer) = match result {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let bytes = resp.bytes().await.unwrap_or_default();
                        (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
                    }
                    Err(e) => (0, json!({"transport": e.to_string()})),
                };
                let latency = sent.elapsed();
                let (want_status, want_code) = kind.expected();
                let code = answer["error"]["code"].as_str().unwrap_or_default();
                let ok = status == want_status
                    && code == want_code
                    && (kind != Kind::Valid || answer["status"] == "started");
                let detail = if ok { String::new() } else { format!("HTTP {status} {answer}") };
                outcomes.lock().unwrap_or_else(|p| p.into_inner()).push(Outcome { kind, latency, ok, detail });
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let finished = tokio::time::timeout(opts.deadline, async { while workers.join_next().await.is_some() {} }).await;
    let elapsed = started.elapsed();
    if finished.is_err() {
        workers.abort_all();
    }
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await.unwrap_or_default();
    let peak = proc_status_kib(pid, "VmHWM:").unwrap_or(0).max(samples.iter().map(|(_, r)| *r).max().unwrap_or(0));
    let _ = child.kill().await;
    drain.abort();

    let state_client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
    let state = sandbox.state(&state_client).await?;
    sandbox.stop().await;

    // ---- figures ----
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    let answered = outcomes.len();
    let errors: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok).collect();
    let ms_of = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut t = Table::new(&["requests", "count", "wrong answers", "p50", "p90", "p99", "max"]);
    let mut row = |label: &str, filter: &dyn Fn(&Outcome) -> bool| {
        let sel: Vec<&Outcome> = outcomes.iter().filter(|o| filter(o)).collect();
        let s = summarize(&sel.iter().map(|o| ms_of(o.latency)).collect::<Vec<_>>());
        let wrong = sel.iter().filter(|o| !o.ok).count();
        t.row(vec![
            label.to_owned(),
            s.n.to_string(),
            wrong.to_string(),
            format!("{:.1} ms", s.p50),
            format!("{:.1} ms", s.p90),
            format!("{:.1} ms", s.p99),
            format!("{:.1} ms", s.max),
        ]);
    };
    row("all", &|_| true);
    for kind in [Kind::Valid, Kind::BadSignature, Kind::StaleTimestamp, Kind::MalformedBody] {
        let (status, code) = kind.expected();
        let label = if code.is_empty() {
            format!("{} → {status} started", kind.name())
        } else {
            format!("{} → {status} {code}", kind.name())
        };
        row(&label, &|o: &Outcome| o.kind == kind);
    }

    let restore_calls = state["calls"]["RestoreInstance"].as_u64().unwrap_or(0);
    let started_map = state["restoresStarted"].as_object().cloned().unwrap_or_default();
    let once_each = started_map.len() == n && started_map.values().all(|v| v.as_u64() == Some(1));
    let rss_at = |frac: f64| {
        let target = (answered as f64 * frac) as usize;
        samples.iter().find(|(d, _)| *d >= target).map_or(0, |(_, r)| *r)
    };
    let (rss_quarter, rss_half, rss_end) = (rss_at(0.25), rss_at(0.5), samples.last().map_or(0, |(_, r)| *r));
    let rss_max = samples.iter().map(|(_, r)| *r).max().unwrap_or(0);
    // Flat: the allocator settles while concurrency ramps up, so growth is judged over the
    // second half of the requests (which still adds one cached password per new instance).
    let growth = rss_end.saturating_sub(rss_half);
    let throughput = answered as f64 / elapsed.as_secs_f64();
    let valid_throughput = outcomes.iter().filter(|o| o.kind == Kind::Valid).count() as f64 / elapsed.as_secs_f64();
    let flat = growth <= 1024;
    let pass =
        finished.is_ok() && answered == 2 * n && errors.is_empty() && restore_calls == n as u64 && once_each && flat;

    let mut md = String::new();
    let _ = writeln!(
        md,
        "{} requests ({} valid restores of distinct instances, {} invalid) at concurrency {} in {:.2} s: \
         **{:.0} requests/s** ({:.0} restores/s).\n",
        answered,
        n,
        answered.saturating_sub(outcomes.iter().filter(|o| o.kind == Kind::Valid).count()),
        opts.concurrency,
        elapsed.as_secs_f64(),
        throughput,
        valid_throughput
    );
    let _ = writeln!(md, "{}", t.render());
    let _ = writeln!(
        md,
        "- wrong answers: {} (transport errors included){}",
        errors.len(),
        errors.first().map(|e| format!("; first: {}", e.detail)).unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "- sandbox: RestoreInstance called {restore_calls} times for {n} deliveries; every instance restored exactly once: {once_each}"
    );
    let _ = writeln!(md, "- backend calls (counting proxies): `{:?}`", meter.actions());
    let _ = writeln!(
        md,
        "- function RSS: {:.1} MiB at 25 % of the requests, {:.1} MiB at 50 %, {:.1} MiB at the end (+{} KiB over the second half), max sampled {:.1} MiB, VmHWM {:.1} MiB; flat (≤ 1 MiB over the second half): {}",
        rss_quarter as f64 / 1024.0,
        rss_half as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        growth,
        rss_max as f64 / 1024.0,
        peak as f64 / 1024.0,
        flat
    );
    let _ = writeln!(md, "- verdict: {}", if pass { "PASS" } else { "FAIL" });
    println!("{md}");
    std::fs::write(opts.out.join("load.md"), &md).map_err(io)?;
    let results = json!({
        "requests": answered, "valid": n, "concurrency": opts.concurrency, "seconds": elapsed.as_secs_f64(),
        "throughput_rps": throughput, "wrong_answers": errors.len(),
        "restore_calls": restore_calls, "every_instance_once": once_each,
        "rss_kib": {"quarter": rss_quarter, "half": rss_half, "end": rss_end, "max": rss_max, "hwm": peak, "samples": samples},
        "backend_actions": meter.actions(), "pass": pass,
    });
    std::fs::write(opts.out.join("load.json"), serde_json::to_string_pretty(&results).unwrap_or_default())
        .map_err(io)?;
    Ok(pass)
}
