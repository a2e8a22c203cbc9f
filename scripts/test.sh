#!/usr/bin/env bash
# What `make test` and CI run: venv, fmt --check, clippy, cargo test against moto, cfn-lint.
# Every step runs even after an earlier one failed; the exit status is non-zero if any failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A moto of our own, apart from a `make run` stack that may be up in .run/.
export RUN_DIR="$ROOT/.run/test"

FAILED=()
SUMMARY=()

# step NAME CMD...: print a header, run CMD, record its outcome and elapsed seconds.
step() {
	local name="$1" start rc=0
	shift
	printf '\n==> %s\n' "$name"
	start=$SECONDS
	"$@" || rc=$?
	if ((rc == 0)); then
		printf '<== %s ok (%d s)\n' "$name" $((SECONDS - start))
		SUMMARY+=("$name ok $((SECONDS - start))s")
	else
		printf '<== %s FAILED, exit %d (%d s)\n' "$name" "$rc" $((SECONDS - start))
		SUMMARY+=("$name FAILED $((SECONDS - start))s")
		FAILED+=("$name")
	fi
	return "$rc"
}

cleanup() {
	bash "$ROOT/scripts/moto.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_moto() {
	MOTO_ENDPOINT="$(bash "$ROOT/scripts/moto.sh" start)"
}

# cargo test's stdout is also kept in $RUN_DIR/cargo-test.out, to total its "test result:" lines.
TEST_OUT="$RUN_DIR/cargo-test.out"
cargo_test() {
	mkdir -p "$RUN_DIR"
	MOTO_ENDPOINT="$MOTO_ENDPOINT" \
		AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
		cargo test --locked --no-fail-fast | tee "$TEST_OUT"
}

# One plain "tests: N passed, N failed, N skipped" line summing every test binary's result line
# (cargo's own last line is the doc-tests', often "0 passed"). Nothing when no binary ran.
test_totals() {
	[[ -s "$TEST_OUT" ]] || return 0
	awk '/^test result: / {
		for (i = 1; i <= NF; i++) {
			if ($(i) ~ /^passed;?$/) p += $(i - 1)
			if ($(i) ~ /^failed;?$/) f += $(i - 1)
			if ($(i) ~ /^ignored;?$/) s += $(i - 1)
		}
		n++
	}
	END { if (n) printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$TEST_OUT"
}

total=$SECONDS
step venv bash "$ROOT/scripts/venv.sh" || {
	echo "venv failed: cannot go on" >&2
	exit 1
}
step fmt cargo fmt --check || true
step clippy cargo clippy --locked --all-targets -- -D warnings || true
step deny bash "$ROOT/scripts/deny.sh" || true
MOTO_ENDPOINT=""
rm -f "$TEST_OUT"
step moto start_moto || true
step test cargo_test || true
if [[ -f template.yaml ]]; then
	step template bash "$ROOT/scripts/validate-template.sh" || true
fi

summary=""
for s in "${SUMMARY[@]}"; do summary+="${summary:+; }$s"; done
printf '\n==> summary (%d s): %s\n' $((SECONDS - total)) "$summary"
if ((${#FAILED[@]})); then
	printf 'make test FAILED: %s\n' "${FAILED[*]}"
fi
test_totals
((${#FAILED[@]} == 0))
