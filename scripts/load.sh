#!/usr/bin/env bash
# `make load`: LOAD_REQUESTS (2000) signed restores of distinct instances, each a distinct
# delivery, plus as many invalid requests (bad signature, stale timestamp, malformed body),
# at LOAD_CONCURRENCY (50), through the function's local mode against the CRS sandbox and moto
# on loopback. Fails unless every answer is the documented one, RestoreInstance ran exactly
# once per delivery (sandbox counters) and memory stayed flat. Bounded: LOAD_DEADLINE (600) s.
# Results: bench/results/load.{md,json}.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export RUN_DIR="$ROOT/.run/load"
OUT="${BENCH_OUT:-$ROOT/bench/results}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

cleanup() { bash "$ROOT/scripts/moto.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "==> venv"
bash "$ROOT/scripts/venv.sh"
log "==> cargo build --release"
cargo build --locked --release --bins
# The same package set as scripts/bench.sh, so both share one feature resolution (no rebuilds).
cargo build --locked --release -p crs-bench -p hello-lambda
log "==> moto"
MOTO="$(bash "$ROOT/scripts/moto.sh" start)"

log "==> load: ${LOAD_REQUESTS:-2000} restores + as many invalid requests at concurrency ${LOAD_CONCURRENCY:-50}"
"$BIN/crs-bench" load \
	--ours "${BENCH_OURS:-$BIN/crs-restore}" --sandbox "$BIN/crs-sandbox" --moto "$MOTO" \
	--events "$ROOT/events" --out "$OUT" \
	--requests "${LOAD_REQUESTS:-2000}" --concurrency "${LOAD_CONCURRENCY:-50}" \
	--deadline-seconds "${LOAD_DEADLINE:-600}"
