#!/usr/bin/env bash
# `make bench`: the performance measurement described in BENCHMARKS.md.
#
#   1. release builds of crs-restore, crs-sandbox, the bench harness and the hello-world
#      lambda_http baseline (same release profile; incremental after the first time);
#   2. moto on a free loopback port (.run/bench), the CRS sandbox started by the harness;
#   3. `crs-bench runtime`: cold starts and warm invocations of both binaries through the
#      Lambda Runtime API emulator, backend calls counted and timed by proxies;
#   4. `cargo bench --bench hot_path` (criterion) and its medians.
#
# Results: bench/results/{runtime.md,runtime.json,warm-latency.svg,criterion.md}.
# Env: BENCH_COLD (20) cold starts per binary, BENCH_WARM (1000) warm restores and as many
# dry runs, BENCH_OUT (bench/results), BENCH_CRITERION=0 skips criterion, BENCH_OURS=path
# measures another build of crs-restore (e.g. a profile experiment).
# Loopback only; every loop is bounded; nothing is left running.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_setup bench

log "==> runtime emulator: cold starts, warm invocations (crs-restore vs hello-world)"
"$BIN/crs-bench" runtime \
	--ours "${BENCH_OURS:-$BIN/crs-restore}" --hello "$BIN/hello-lambda" --sandbox "$BIN/crs-sandbox" \
	--moto "$MOTO" --events "$ROOT/events" --out "$OUT" \
	--cold "${BENCH_COLD:-20}" --warm "${BENCH_WARM:-1000}"

if [[ "${BENCH_CRITERION:-1}" != 0 ]]; then
	log "==> criterion: the in-process hot path"
	cargo bench --locked --bench hot_path
	"$BIN/crs-bench" criterion --dir "${CARGO_TARGET_DIR:-$ROOT/target}/criterion" --out "$OUT"
fi
log "results in ${OUT#"$ROOT"/}/"
