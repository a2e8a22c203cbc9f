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

bench_setup load

log "==> load: ${LOAD_REQUESTS:-2000} restores + as many invalid requests at concurrency ${LOAD_CONCURRENCY:-50}"
"$BIN/crs-bench" load \
	--ours "${BENCH_OURS:-$BIN/crs-restore}" --sandbox "$BIN/crs-sandbox" --moto "$MOTO" \
	--events "$ROOT/events" --out "$OUT" \
	--requests "${LOAD_REQUESTS:-2000}" --concurrency "${LOAD_CONCURRENCY:-50}" \
	--deadline-seconds "${LOAD_DEADLINE:-600}"
