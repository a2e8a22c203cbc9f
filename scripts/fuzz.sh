#!/usr/bin/env bash
# `make fuzz`: the property tests at PROPTEST_CASES (default 1,000,000) cases per target, then
# the cargo-fuzz (libFuzzer) targets in fuzz/ at FUZZ_RUNS (default 1,000,000) runs each, and a
# count per target. cargo-fuzz needs the nightly toolchain; without it that half is skipped and
# says so. Long: about 30 minutes on 2 cores once built; each half's first build adds 15-20 minutes
# (the numbers are in RELIABILITY.md).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export PROPTEST_CASES="${PROPTEST_CASES:-1000000}"
FUZZ_RUNS="${FUZZ_RUNS:-1000000}"
OUT="$ROOT/target/fuzz-report"
mkdir -p "$OUT"
status=0

printf '==> property tests: %s cases per target (release build without LTO)\n' "$PROPTEST_CASES"
start=$SECONDS
# The release profile's LTO and single codegen unit only slow this build down.
if CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	cargo test --locked --release --test properties -- --nocapture --test-threads 2 >"$OUT/properties.log" 2>&1; then
	printf '<== property tests ok (%d s)\n' $((SECONDS - start))
else
	printf '<== property tests FAILED (%d s); see %s\n' $((SECONDS - start)) "${OUT#"$ROOT"/}/properties.log"
	grep -E 'panicked|minimal failing input' -A6 "$OUT/properties.log" | head -40 || true
	status=1
fi
grep -E '^properties: ' "$OUT/properties.log" | sort || true

if cargo +nightly fuzz --version >/dev/null 2>&1; then
	printf '\n==> cargo fuzz (nightly): %s runs per target\n' "$FUZZ_RUNS"
	(cd fuzz && cargo +nightly fuzz build) >"$OUT/fuzz-build.log" 2>&1 || {
		echo "cargo fuzz build FAILED; see ${OUT#"$ROOT"/}/fuzz-build.log"
		exit 1
	}
	for target in $(cd fuzz && cargo +nightly fuzz list); do
		start=$SECONDS
		log_file="$OUT/fuzz-$target.log"
		if (cd fuzz && cargo +nightly fuzz run "$target" -- -runs="$FUZZ_RUNS" -max_len=4096) >"$log_file" 2>&1; then
			runs="$(grep -oE 'Done [0-9]+ runs' "$log_file" | tail -1)"
			printf 'fuzz: %s: %s (%d s)\n' "$target" "${runs:-no count}" $((SECONDS - start))
		else
			printf 'fuzz: %s: FAILED (%d s); see %s\n' "$target" $((SECONDS - start)) "${log_file#"$ROOT"/}"
			status=1
		fi
	done
else
	echo "cargo fuzz: skipped (needs cargo-fuzz and the nightly toolchain: cargo install cargo-fuzz --locked)"
fi
exit "$status"
