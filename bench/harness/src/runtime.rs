//! `crs-bench runtime`: cold starts and warm invocations of the real binary and of the
//! hello-world `lambda_http` binary, side by side, through the runtime emulator.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backends::{
    CLONE_INSTANCE, Events, MotoSeed, Sandbox, backup_id, clone_dry_run_body, restore_body, unix_now,
};
use crate::emulator::{self, EventFn, Invocation, Run, Spec};
use crate::meter::Meter;
use crate::proxy;
use crate::report::{Series, Summary, Table, latency_cdf_svg, ms, ratio, summarize};

pub struct Opts {
    pub ours: PathBuf,
    pub hello: PathBuf,
    pub sandbox: PathBuf,
    pub moto: String,
    pub events: PathBuf,
    pub out: PathBuf,
    pub cold: usize,
    pub warm: usize,
    pub trace_ids: bool,
}

const INSTANCE: &str = "crs-bench001";
const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn lambda_env(function: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("LANG", "C.UTF-8"),
        ("TZ", ":UTC"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// Every event of a run labelled `label` is a clone dry run.
fn clone_events(events: Arc<Events>, label: String) -> EventFn {
    Box::new(move |i| {
        let ev = events.event(&clone_dry_run_body(&backup_id(1)), &format!("msg_{label}_{i}"), unix_now(), None);
        serde_json::to_vec(&ev).unwrap_or_default()
    })
}

/// Event `i` of a run labelled `label`: 0 and `1..=warm` are restores, the rest dry runs.
fn ours_events(events: Arc<Events>, label: String, warm: usize) -> EventFn {
    Box::new(move |i| {
        let body = restore_body(INSTANCE, &backup_id(0), i > warm);
        let ev = events.event(&body, &format!("msg_{label}_{i}"), unix_now(), None);
        serde_json::to_vec(&ev).unwrap_or_default()
    })
}

fn ms_of(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn us_of(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn check_statuses(who: &str, run: &Run, expect: impl Fn(usize) -> u16) -> Result<(), String> {
    if let Some(f) = &run.failure {
        return Err(format!("{who}: {f}"));
    }
    for inv in &run.invocations {
        if inv.error.is_some() || inv.status != Some(expect(inv.index)) {
            return Err(format!(
                "{who}: invocation {} answered {:?} (error {:?}), expected {}",
                inv.index,
                inv.status,
                inv.error,
                expect(inv.index)
            ));
        }
    }
    Ok(())
}

struct Cold {
    init_ms: Vec<f64>,
    first_ms: Vec<f64>,
    /// Spawn → first response minus backend time: init plus the first invocation's own work.
    cold_own_ms: Vec<f64>,
    /// The first invocation alone, minus backend time.
    first_inv_own_ms: Vec<f64>,
    first_backend_ms: Vec<f64>,
    init_calls: u64,
    first_sm_calls: Vec<u64>,
    first_ddb_calls: Vec<u64>,
    first_tencent_calls: Vec<u64>,
    first_connections: Vec<u64>,
    init_cpu_ms: Vec<f64>,
    first_cpu_ms: Vec<f64>,
}

impl Cold {
    fn new() -> Self {
        Self {
            init_ms: vec![],
            first_ms: vec![],
            cold_own_ms: vec![],
            first_inv_own_ms: vec![],
            first_backend_ms: vec![],
            init_calls: 0,
            first_sm_calls: vec![],
            first_ddb_calls: vec![],
            first_tencent_calls: vec![],
            first_connections: vec![],
            init_cpu_ms: vec![],
            first_cpu_ms: vec![],
        }
    }

    fn add(&mut self, run: &Run) {
        let (Some(init), Some(first), Some(inv)) = (run.init, run.first_response, run.invocations.first()) else {
            return;
        };
        let backend = Duration::from_nanos(inv.backend.wall_ns);
        self.init_ms.push(ms_of(init));
        self.first_ms.push(ms_of(first));
        self.cold_own_ms.push(ms_of(first.saturating_sub(backend)));
        self.first_inv_own_ms.push(ms_of(inv.own()));
        self.first_backend_ms.push(ms_of(backend));
        self.init_calls += run.init_backend.calls();
        self.first_sm_calls.push(inv.backend.secrets_manager);
        self.first_ddb_calls.push(inv.backend.dynamodb);
        self.first_tencent_calls.push(inv.backend.tencent);
        self.first_connections.push(inv.backend.connections);
        if let (Some(a), Some(b)) = (run.cpu_at_init_ns, run.cpu_at_first_ns) {
            self.init_cpu_ms.push(a as f64 / 1e6);
            self.first_cpu_ms.push(b.saturating_sub(a) as f64 / 1e6);
        }
    }
}

fn warm_slice(run: &Run, range: std::ops::RangeInclusive<usize>) -> Vec<&Invocation> {
    run.invocations.iter().filter(|i| range.contains(&i.index)).collect()
}

fn lat_us(invs: &[&Invocation]) -> Vec<f64> {
    invs.iter().map(|i| us_of(i.latency)).collect()
}

fn own_us(invs: &[&Invocation]) -> Vec<f64> {
    invs.iter().map(|i| us_of(i.own())).collect()
}

fn backend_us(invs: &[&Invocation]) -> Vec<f64> {
    invs.iter().map(|i| i.backend.wall_ns as f64 / 1000.0).collect()
}

fn per_inv(invs: &[&Invocation], f: impl Fn(&Invocation) -> u64) -> (f64, u64) {
    let total: u64 = invs.iter().map(|i| f(i)).sum();
    let max = invs.iter().map(|i| f(i)).max().unwrap_or(0);
    (if invs.is_empty() { 0.0 } else { total as f64 / invs.len() as f64 }, max)
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn us(v: f64) -> String {
    if v >= 1000.0 { ms(v / 1000.0) } else { format!("{v:.0} µs") }
}

pub async fn run(opts: Opts) -> Result<(), String> {
    std::fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| e.to_string();
    let meter = Arc::new(Meter::default());
    let ids = vec![INSTANCE.to_owned(), CLONE_INSTANCE.to_owned()];
    // restoreDurationMs 0: the instance is never left locked, so every delivery restores it.
    let sandbox = Sandbox::start(&opts.sandbox, &opts.out, &ids, 0).await.map_err(io)?;
    let moto_proxy = proxy::spawn(&opts.moto, Arc::clone(&meter), false).await.map_err(io)?;
    let sandbox_proxy = proxy::spawn(&sandbox.url, Arc::clone(&meter), true).await.map_err(io)?;
    let seed = MotoSeed::new("rt");
    seed.seed(&opts.moto, &ids).await?;
    let events = Arc::new(Events::load(&opts.events)?);

    let mut ours_env = lambda_env("crs-restore-bench");
    ours_env.extend(seed.env());
    ours_env.extend([
        ("AWS_ENDPOINT_URL".to_owned(), format!("http://{moto_proxy}")),
        ("TENCENT_ENDPOINT".to_owned(), format!("http://{sandbox_proxy}/v2/index.php")),
        ("TENCENT_API_VERSION".to_owned(), "2".to_owned()),
        ("TENCENT_REGION".to_owned(), "ap-guangzhou".to_owned()),
    ]);
    let hello_env = lambda_env("hello-bench");
    let ours_log = opts.out.join("crs-restore.log");
    let hello_log = opts.out.join("hello-lambda.log");
    // Bounded: two minutes plus 50 ms per invocation.
    let timeout = |total: usize| Duration::from_secs(120) + Duration::from_millis(50 * total as u64);
    let ours_spec = |total: usize, label: String, warm: usize| Spec {
        binary: &opts.ours,
        env: ours_env.clone(),
        log: &ours_log,
        events: ours_events(Arc::clone(&events), label, warm),
        total,
        rss_every: 100,
        timeout: timeout(total),
        trace_ids: opts.trace_ids,
    };
    let hello_spec = |total: usize, label: String| Spec {
        binary: &opts.hello,
        env: hello_env.clone(),
        log: &hello_log,
        events: ours_events(Arc::clone(&events), label, usize::MAX),
        total,
        rss_every: 100,
        timeout: timeout(total),
        trace_ids: opts.trace_ids,
    };
    let expect_ours = |warm: usize| move |i: usize| if i > warm { 200 } else { 202 };

    // Cold starts, alternating which binary goes first.
    let (mut cold_ours, mut cold_hello) = (Cold::new(), Cold::new());
    let tag = format!("{}{}", std::process::id(), unix_now());
    for k in 0..opts.cold {
        for which in if k % 2 == 0 { [0, 1] } else { [1, 0] } {
            if which == 0 {
                let run =
                    emulator::run(ours_spec(1, format!("cold{tag}x{k}"), 0), Arc::clone(&meter)).await.map_err(io)?;
                check_statuses("crs-restore (cold)", &run, expect_ours(0))?;
                cold_ours.add(&run);
            } else {
                let run =
                    emulator::run(hello_spec(1, format!("hcold{tag}x{k}")), Arc::clone(&meter)).await.map_err(io)?;
                check_statuses("hello-lambda (cold)", &run, |_| 200)?;
                cold_hello.add(&run);
            }
        }
    }
    eprintln!("cold starts done ({} each)", opts.cold);

    // Lever: TLS trust roots. Init only (spawn → first /next), alternating, with the trust
    // store the process finds: the platform probe (this machine: a bundle plus a directory of
    // ~150 files), the bundle alone, and a single root (≈ the cost of loading no roots).
    let one_root = opts.out.join("one-root.pem");
    let bundle = std::fs::read_to_string(BUNDLE).unwrap_or_default();
    let end = "-----END CERTIFICATE-----";
    if let Some(stop) = bundle.find(end) {
        let start = bundle.find("-----BEGIN CERTIFICATE-----").unwrap_or(0);
        std::fs::write(&one_root, format!("{}\n", &bundle[start..stop + end.len()])).map_err(io)?;
    }
    let variants: Vec<(&str, Vec<(String, String)>)> = vec![
        ("platform probe (SSL_CERT_FILE/SSL_CERT_DIR unset)", vec![]),
        ("SSL_CERT_FILE=the bundle only", vec![("SSL_CERT_FILE".into(), BUNDLE.into())]),
        ("SSL_CERT_FILE=one root (≈ no root loading)", vec![("SSL_CERT_FILE".into(), one_root.display().to_string())]),
    ];
    let mut tls_init: Vec<Vec<f64>> = vec![Vec::new(); variants.len() + 1];
    for k in 0..opts.cold {
        for (v, (_, extra)) in variants.iter().enumerate() {
            let mut spec = ours_spec(0, format!("tls{tag}x{k}"), 0);
            spec.env.extend(extra.iter().cloned());
            let run = emulator::run(spec, Arc::clone(&meter)).await.map_err(io)?;
            tls_init[v].extend(run.init.map(ms_of));
        }
        let run = emulator::run(hello_spec(0, format!("htls{tag}x{k}")), Arc::clone(&meter)).await.map_err(io)?;
        tls_init[variants.len()].extend(run.init.map(ms_of));
    }
    let hello_tls = summarize(&tls_init[variants.len()]);

    // Warm: one process each, 1 cold + `warm` restores + `warm` dry runs.
    let total = 1 + 2 * opts.warm;
    let ours =
        emulator::run(ours_spec(total, format!("warm{tag}"), opts.warm), Arc::clone(&meter)).await.map_err(io)?;
    check_statuses("crs-restore (warm)", &ours, expect_ours(opts.warm))?;
    let hello = emulator::run(hello_spec(total, format!("hwarm{tag}")), Arc::clone(&meter)).await.map_err(io)?;
    check_statuses("hello-lambda (warm)", &hello, |_| 200)?;
    eprintln!("warm runs done ({} restores, {} dry runs)", opts.warm, opts.warm);

    // Attribution: the same restores with the in-memory idempotency store (no DynamoDB calls),
    // to see what the two DynamoDB calls cost on the function's side.
    let mut mem_spec = ours_spec(1 + opts.warm, format!("mem{tag}"), opts.warm);
    mem_spec.env.retain(|(k, _)| k != "IDEMPOTENCY_TABLE");
    let memory_store = emulator::run(mem_spec, Arc::clone(&meter)).await.map_err(io)?;
    check_statuses("crs-restore (in-memory idempotency)", &memory_store, expect_ours(opts.warm))?;

    // Clone dry runs (API 3.0: instance, security groups, backups, price), one warm process.
    let clone_runs = opts.warm.min(300);
    let mut clone_env = ours_env.clone();
    clone_env.retain(|(k, _)| k != "TENCENT_ENDPOINT" && k != "TENCENT_API_VERSION");
    clone_env.extend([
        ("TENCENT_ENDPOINT".to_owned(), format!("http://{sandbox_proxy}/")),
        ("TENCENT_API_VERSION".to_owned(), "3".to_owned()),
    ]);
    let clone_spec = Spec {
        binary: &opts.ours,
        env: clone_env,
        log: &ours_log,
        events: clone_events(Arc::clone(&events), format!("clone{tag}")),
        total: 1 + clone_runs,
        rss_every: 100,
        timeout: timeout(1 + clone_runs),
        trace_ids: opts.trace_ids,
    };
    let clones = emulator::run(clone_spec, Arc::clone(&meter)).await.map_err(io)?;
    check_statuses("crs-restore (clone dry runs)", &clones, |_| 200)?;

    let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
    let sandbox_state = sandbox.state(&client).await?;
    sandbox.stop().await;

    // ---- figures ----
    let restores = warm_slice(&ours, 1..=opts.warm);
    let dry = warm_slice(&ours, opts.warm + 1..=2 * opts.warm);
    let hello_warm = warm_slice(&hello, 1..=2 * opts.warm);
    let (r_lat, r_own, r_back) =
        (summarize(&lat_us(&restores)), summarize(&own_us(&restores)), summarize(&backend_us(&restores)));
    let (d_lat, d_own) = (summarize(&lat_us(&dry)), summarize(&own_us(&dry)));
    let clone_dry = warm_slice(&clones, 1..=clone_runs);
    let (c_lat, c_own) = (summarize(&lat_us(&clone_dry)), summarize(&own_us(&clone_dry)));
    let tc_clone = per_inv(&clone_dry, |i| i.backend.tencent);
    let h_lat = summarize(&lat_us(&hello_warm));
    let (ci, hi) = (summarize(&cold_ours.init_ms), summarize(&cold_hello.init_ms));
    let (cf, hf) = (summarize(&cold_ours.first_ms), summarize(&cold_hello.first_ms));
    let cold_own = summarize(&cold_ours.cold_own_ms);
    let first_own = summarize(&cold_ours.first_inv_own_ms);
    let first_backend = summarize(&cold_ours.first_backend_ms);
    let h_first_inv = summarize(&cold_hello.first_inv_own_ms);
    let sm_warm = per_inv(&restores, |i| i.backend.secrets_manager);
    let sm_dry = per_inv(&dry, |i| i.backend.secrets_manager);
    let ddb_warm = per_inv(&restores, |i| i.backend.dynamodb);
    let tc_warm = per_inv(&restores, |i| i.backend.tencent);
    let ddb_dry = per_inv(&dry, |i| i.backend.dynamodb);
    let tc_dry = per_inv(&dry, |i| i.backend.tencent);
    let max_u64 = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let mean_u64 = |v: &[u64]| if v.is_empty() { 0.0 } else { v.iter().sum::<u64>() as f64 / v.len() as f64 };

    let rss_at = |run: &Run, n: usize| run.rss_samples.iter().find(|(k, _)| *k >= n).map(|(_, r)| *r).unwrap_or(0);
    let rss_restore_start = rss_at(&ours, 101);
    let rss_restore_end = rss_at(&ours, opts.warm + 1);
    let rss_end = rss_at(&ours, total);
    // VmHWM is updated lazily by the kernel: take the larger of it and the sampled VmRSS.
    let peak_of = |run: &Run| run.rss_samples.iter().map(|(_, r)| *r).chain(run.peak_rss_kib).max().unwrap_or(0);
    let (peak, hello_peak) = (peak_of(&ours), peak_of(&hello));
    let ours_size = file_size(&opts.ours);
    let hello_size = file_size(&opts.hello);
    let mib = |kib: u64| kib as f64 / 1024.0;

    let restores_started: u64 =
        sandbox_state["restoresStarted"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let restore_calls = sandbox_state["calls"]["RestoreInstance"].as_u64().unwrap_or(0);
    let expected_restores = (opts.cold + 2 * (1 + opts.warm)) as u64;

    let mut t = Table::new(&["figure", "crs-restore", "hello-world lambda_http", "ratio", "budget", "holds"]);
    let yes = |ok: bool| if ok { "yes".to_owned() } else { "**NO**".to_owned() };
    let init_ratio = ci.p50 / hi.p50.max(f64::MIN_POSITIVE);
    t.row(vec![
        format!("init: spawn → first /next, p50 (min–max) of {}", ci.n),
        format!("{} ({}–{})", ms(ci.p50), ms(ci.min), ms(ci.max)),
        format!("{} ({}–{})", ms(hi.p50), ms(hi.min), ms(hi.max)),
        ratio(ci.p50, hi.p50),
        "≤ 1.5× hello".into(),
        yes(init_ratio <= 1.5),
    ]);
    t.row(vec![
        "backend calls during init (all cold starts)".into(),
        cold_ours.init_calls.to_string(),
        cold_hello.init_calls.to_string(),
        "–".into(),
        "0".into(),
        yes(cold_ours.init_calls == 0),
    ]);
    t.row(vec![
        "cold: spawn → first response, p50".into(),
        ms(cf.p50),
        ms(hf.p50),
        ratio(cf.p50, hf.p50),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        "cold: backend time in the first restore, p50".into(),
        ms(first_backend.p50),
        "0".into(),
        "–".into(),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        "cold: own time, spawn → first response minus backend, p50 (max)".into(),
        format!("{} ({})", ms(cold_own.p50), ms(cold_own.max)),
        format!("{} ({})", ms(hf.p50), ms(hf.max)),
        ratio(cold_own.p50, hf.p50),
        "≤ 15 ms".into(),
        yes(cold_own.p50 <= 15.0),
    ]);
    t.row(vec![
        "cold: own time of the first invocation alone, p50".into(),
        ms(first_own.p50),
        ms(h_first_inv.p50),
        ratio(first_own.p50, h_first_inv.p50),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        format!("warm restore latency p50 / p90 / p99 ({} restores)", r_lat.n),
        format!("{} / {} / {}", us(r_lat.p50), us(r_lat.p90), us(r_lat.p99)),
        format!("{} / {} / {}", us(h_lat.p50), us(h_lat.p90), us(h_lat.p99)),
        ratio(r_lat.p50, h_lat.p50),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        "warm restore: backend time p50".into(),
        us(r_back.p50),
        "0".into(),
        "–".into(),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        "warm restore: own time p50 / p99".into(),
        format!("{} / {}", us(r_own.p50), us(r_own.p99)),
        format!("{} / {}", us(h_lat.p50), us(h_lat.p99)),
        ratio(r_own.p50, h_lat.p50),
        "≤ 1 ms".into(),
        yes(r_own.p50 <= 1000.0),
    ]);
    t.row(vec![
        format!("warm dry run latency p50 / p99 ({} dry runs)", d_lat.n),
        format!("{} / {}", us(d_lat.p50), us(d_lat.p99)),
        format!("{} / {}", us(h_lat.p50), us(h_lat.p99)),
        ratio(d_lat.p50, h_lat.p50),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        "warm dry run: own time p50 / p99".into(),
        format!("{} / {}", us(d_own.p50), us(d_own.p99)),
        format!("{} / {}", us(h_lat.p50), us(h_lat.p99)),
        ratio(d_own.p50, h_lat.p50),
        "≤ 1 ms".into(),
        yes(d_own.p50 <= 1000.0),
    ]);
    t.row(vec![
        format!(
            "warm clone dry run (API 3.0, {:.0} Tencent calls each): latency p50 / own time p50 / p99 ({} runs)",
            tc_clone.0, c_own.n
        ),
        format!("{} / {} / {}", us(c_lat.p50), us(c_own.p50), us(c_own.p99)),
        format!("{} / {}", us(h_lat.p50), us(h_lat.p99)),
        ratio(c_own.p50, h_lat.p50),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        "Secrets Manager calls: cold first restore (max) / warm restore (max) / warm dry run (max)".into(),
        format!("{} / {} / {}", max_u64(&cold_ours.first_sm_calls), sm_warm.1, sm_dry.1),
        "0".into(),
        "–".into(),
        "≤ 1 per secret (3) cold, 0 warm".into(),
        yes(max_u64(&cold_ours.first_sm_calls) <= 3 && sm_warm.1 == 0 && sm_dry.1 == 0),
    ]);
    t.row(vec![
        "DynamoDB calls per invocation: cold / warm restore / dry run (mean)".into(),
        format!("{:.1} / {:.2} / {:.2}", mean_u64(&cold_ours.first_ddb_calls), ddb_warm.0, ddb_dry.0),
        "0".into(),
        "–".into(),
        "–".into(),
        "–".into(),
    ]);
    t.row(vec![
        "Tencent calls per invocation: cold / warm restore / dry run (mean)".into(),
        format!("{:.1} / {:.2} / {:.2}", mean_u64(&cold_ours.first_tencent_calls), tc_warm.0, tc_dry.0),
        "0".into(),
        "–".into(),
        "–".into(),
        "–".into(),
    ]);
    // CPU time (all threads) rather than wall time: what Lambda's CPU share scales.
    let warm_cpu_us = |run: &Run| match (run.cpu_at_first_ns, run.cpu_at_end_ns) {
        (Some(a), Some(b)) if total > 1 => b.saturating_sub(a) as f64 / 1000.0 / (total - 1) as f64,
        _ => 0.0,
    };
    let (ic, hc) = (summarize(&cold_ours.init_cpu_ms), summarize(&cold_hello.init_cpu_ms));
    let (fc, hfc) = (summarize(&cold_ours.first_cpu_ms), summarize(&cold_hello.first_cpu_ms));
    t.row(vec![
        "CPU time (user+sys, all threads): init p50 / first invocation p50 / per warm invocation (mean)".into(),
        format!("{} / {} / {}", ms(ic.p50), ms(fc.p50), us(warm_cpu_us(&ours))),
        format!("{} / {} / {}", ms(hc.p50), ms(hfc.p50), us(warm_cpu_us(&hello))),
        ratio(ic.p50, hc.p50),
        "–".into(),
        "–".into(),
    ]);
    let mem = warm_slice(&memory_store, 1..=opts.warm);
    let (m_lat, m_own) = (summarize(&lat_us(&mem)), summarize(&own_us(&mem)));
    let mem_cpu = match (memory_store.cpu_at_first_ns, memory_store.cpu_at_end_ns) {
        (Some(a), Some(b)) if opts.warm > 0 => b.saturating_sub(a) as f64 / 1000.0 / opts.warm as f64,
        _ => 0.0,
    };
    t.row(vec![
        "attribution: warm restore with the in-memory idempotency store (no DynamoDB): latency p50 / own p50 / CPU per restore".into(),
        format!("{} / {} / {}", us(m_lat.p50), us(m_own.p50), us(mem_cpu)),
        format!("{} / {} / {}", us(h_lat.p50), us(h_lat.p50), us(warm_cpu_us(&hello))),
        ratio(m_own.p50, h_lat.p50),
        "–".into(),
        "–".into(),
    ]);
    let conn_warm = per_inv(&restores, |i| i.backend.connections);
    let conn_dry = per_inv(&dry, |i| i.backend.connections);
    t.row(vec![
        "new backend connections: cold first restore (mean) / warm restore (total) / dry run (total)".into(),
        format!(
            "{:.1} / {} / {}",
            mean_u64(&cold_ours.first_connections),
            (conn_warm.0 * restores.len() as f64).round(),
            (conn_dry.0 * dry.len() as f64).round()
        ),
        "0".into(),
        "–".into(),
        "reused (≤ 1 % new)".into(),
        yes((conn_warm.0 + conn_dry.0) * 100.0 <= 2.0),
    ]);
    let growth = rss_restore_end.saturating_sub(rss_restore_start);
    let hello_growth = rss_at(&hello, opts.warm + 1).saturating_sub(rss_at(&hello, 101));
    t.row(vec![
        format!("peak RSS (VmHWM) after {} invocations", total),
        format!("{:.1} MiB", mib(peak)),
        format!("{:.1} MiB", mib(hello_peak)),
        ratio(peak as f64, hello_peak as f64),
        "≤ 32 MiB".into(),
        yes(peak > 0 && mib(peak) <= 32.0),
    ]);
    t.row(vec![
        format!("RSS after restore 100 → after restore {} (→ after the dry runs)", opts.warm),
        format!(
            "{:.2} → {:.2} MiB (→ {:.2}), +{} KiB",
            mib(rss_restore_start),
            mib(rss_restore_end),
            mib(rss_end),
            growth
        ),
        format!(
            "{:.2} → {:.2} MiB (→ {:.2}), +{} KiB",
            mib(rss_at(&hello, 101)),
            mib(rss_at(&hello, opts.warm + 1)),
            mib(rss_at(&hello, total)),
            hello_growth
        ),
        "–".into(),
        "flat (no more growth than hello-world's)".into(),
        yes(growth <= hello_growth + 64),
    ]);
    t.row(vec![
        "stripped release binary".into(),
        format!("{:.2} MiB ({} B)", mib(ours_size / 1024), ours_size),
        format!("{:.2} MiB ({} B)", mib(hello_size / 1024), hello_size),
        ratio(ours_size as f64, hello_size as f64),
        "≤ 12 MiB".into(),
        yes(ours_size > 0 && ours_size <= 12 * 1024 * 1024),
    ]);
    t.row(vec![
        "sandbox: RestoreInstance calls / restores started (expected)".into(),
        format!("{restore_calls} / {restores_started} ({expected_restores})"),
        "–".into(),
        "–".into(),
        "one per delivery".into(),
        yes(restore_calls == expected_restores && restores_started == expected_restores),
    ]);

    let mut tls = Table::new(&[
        "trust roots found at start-up",
        "crs-restore init p50 (min–max)",
        "hello-world init p50",
        "ratio",
    ]);
    for (v, (label, _)) in variants.iter().enumerate() {
        let s = summarize(&tls_init[v]);
        tls.row(vec![
            (*label).to_owned(),
            format!("{} ({}–{})", ms(s.p50), ms(s.min), ms(s.max)),
            ms(hello_tls.p50),
            ratio(s.p50, hello_tls.p50),
        ]);
    }

    let mut md = String::new();
    let _ = writeln!(md, "{}", t.render());
    let _ = writeln!(md, "Lever, TLS roots (init only, {} runs each, interleaved):\n\n{}", opts.cold, tls.render());
    let _ = writeln!(md, "Backend calls seen by the counting proxies (whole run): `{:?}`", meter.actions());
    let _ = writeln!(md, "\nSandbox call counters (`/_sandbox/state`): `{}`", sandbox_state["calls"]);
    println!("{md}");
    std::fs::write(opts.out.join("runtime.md"), &md).map_err(io)?;

    let svg = latency_cdf_svg(
        "Warm invocation latency: crs-restore vs hello-world lambda_http (same emulator, same run)",
        &[
            Series { label: "crs-restore, restore (RestoreInstance)", color: "#d62728", values: lat_us(&restores) },
            Series {
                label: "crs-restore, restore, own time (minus backends)",
                color: "#ff9896",
                values: own_us(&restores),
            },
            Series { label: "crs-restore, dry run", color: "#1f77b4", values: lat_us(&dry) },
            Series { label: "hello-world lambda_http", color: "#2ca02c", values: lat_us(&hello_warm) },
        ],
    );
    std::fs::write(opts.out.join("warm-latency.svg"), svg).map_err(io)?;

    let j = |s: Summary| s.to_json();
    let results = json!({
        "cold": {"runs": opts.cold, "ours": {"init_ms": j(ci), "first_response_ms": j(cf), "own_ms": j(cold_own),
                  "first_invocation_own_ms": j(first_own), "first_backend_ms": j(first_backend),
                  "init_backend_calls": cold_ours.init_calls, "init_cpu_ms": j(ic), "first_invocation_cpu_ms": j(fc),
                  "first_calls": {"secretsmanager": cold_ours.first_sm_calls, "dynamodb": cold_ours.first_ddb_calls,
                                  "tencent": cold_ours.first_tencent_calls}},
                 "hello": {"init_ms": j(hi), "first_response_ms": j(hf), "init_cpu_ms": j(hc), "first_invocation_cpu_ms": j(hfc)}},
        "warm_cpu_us_per_invocation": {"ours": warm_cpu_us(&ours), "hello": warm_cpu_us(&hello)},
        "memory_store": {"latency_us": j(m_lat), "own_us": j(m_own), "cpu_us_per_restore": mem_cpu},
        "warm": {"n": opts.warm, "restore_latency_us": j(r_lat), "restore_own_us": j(r_own), "restore_backend_us": j(r_back),
                 "dry_run_latency_us": j(d_lat), "dry_run_own_us": j(d_own), "hello_latency_us": j(h_lat),
                 "calls_per_restore": {"secretsmanager": sm_warm.0, "dynamodb": ddb_warm.0, "tencent": tc_warm.0},
                 "calls_per_dry_run": {"secretsmanager": sm_dry.0, "dynamodb": ddb_dry.0, "tencent": tc_dry.0}},
        "rss_kib": {"ours_peak": peak, "hello_peak": hello_peak, "ours_samples": ours.rss_samples,
                    "hello_samples": hello.rss_samples},
        "binary_bytes": {"ours": ours_size, "hello": hello_size},
        "tls_init_ms": variants.iter().enumerate().map(|(v, (label, _))| json!({"variant": label, "init_ms": j(summarize(&tls_init[v]))})).collect::<Vec<_>>(),
        "tls_hello_init_ms": j(hello_tls),
        "backend_actions": meter.actions(),
        "sandbox_calls": sandbox_state["calls"],
    });
    std::fs::write(opts.out.join("runtime.json"), serde_json::to_string_pretty(&results).unwrap_or_default())
        .map_err(io)?;
    Ok(())
}
