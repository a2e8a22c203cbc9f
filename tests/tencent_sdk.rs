//! Tencent's own Python SDK against a real `crs-sandbox` process: every action the sandbox
//! implements, success and error answers, parsed by the SDK's models (`tests/tencent_sdk.py`
//! holds the table of cases; this test runs it so `cargo test` and `make test` do).

use std::path::PathBuf;
use std::process::Command;

/// `.venv/bin/python` (made by `make test` / `make venv` from requirements-dev.txt), or the
/// interpreter named by `CRS_TEST_PYTHON`.
fn python() -> PathBuf {
    std::env::var_os("CRS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

#[test]
fn the_official_python_sdk_parses_every_sandbox_answer_and_raises_every_sandbox_error() {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: run `make venv` (it installs tencentcloud-sdk-python-redis) or set CRS_TEST_PYTHON",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tencent_sdk.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_crs-sandbox"))
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .output()
        .expect("python starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tests/tencent_sdk.py failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains(" passed, 0 failed"), "no summary line:\n{stdout}\n{stderr}");
}
