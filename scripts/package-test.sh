#!/usr/bin/env bash
# `make package-test`: proves that what `make package` built (and `sam deploy` would upload) works
# where Lambda runs it. For each architecture's zip:
#
#   1. the zip's layout (bootstrap at its root, executable by anyone, as Lambda unpacks it);
#   2. the ELF: architecture, loader, libraries, glibc symbol versions <= 2.34 (Amazon Linux 2023);
#   3. the bootstrap under AWS's own Runtime Interface Emulator (from the aws-sam-cli wheel), against
#      moto (Secrets Manager, DynamoDB) and the CRS sandbox: a signed restore -> 202 with the task
#      id, a bad signature -> 401, the drill event -> a JSON report;
#      x86_64 natively, and again on qemu `-cpu Haswell`, the oldest CPU Lambda runs x86_64 on;
#      arm64 with the emulator and the bootstrap on qemu `-cpu neoverse-n1` (Graviton2);
# and once: the SAM transform of template.yaml grants the public Function URL both permissions, and
# the role's actions equal the AWS calls in src/.
#
# Every check prints PASS/FAIL/SKIP; the last line counts them. Env: PACKAGE_TEST_BUILD=0 tests
# the zips already in .aws-sam/package instead of running `make package` first; PACKAGE_ARCHS as
# for scripts/package.sh; TENCENT_API_VERSION=2|3 (default 2, the template's).
# Loopback only; every process started here is stopped on exit.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export RUN_DIR="$ROOT/.run/package-test"
PKG="$ROOT/.aws-sam/package"
OUT="$RUN_DIR/checks.out"
SANDBOX_PID="$RUN_DIR/sandbox.pid"
CHECKS=("$VENV/bin/python" "$ROOT/scripts/package_checks.py")

cleanup() {
	stop_pidfile "$SANDBOX_PID" crs-sandbox
	bash "$ROOT/scripts/moto.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

total=$SECONDS
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
: >"$OUT"

# check CMD...: run a checker and keep its PASS/FAIL lines in $OUT; a checker that fails
# without saying FAIL (a crash) is a FAIL too.
check() {
	local rc
	{
		local status=0
		"$@" 2>&1 || status=$?
		echo "$status" >"$RUN_DIR/check.rc"
	} | tee "$RUN_DIR/check.out"
	rc="$(<"$RUN_DIR/check.rc")"
	cat "$RUN_DIR/check.out" >>"$OUT"
	if ((rc != 0)) && ! grep -q '^FAIL ' "$RUN_DIR/check.out"; then
		printf 'FAIL %s: exited %d without a verdict (see above)\n' "${3:-$2}" "$rc" | tee -a "$OUT"
	fi
}
skip() {
	printf 'SKIP %s\n' "$*" | tee -a "$OUT"
}
phase() {
	printf '\n==> %s\n' "$*"
}

if [[ "${PACKAGE_TEST_BUILD:-1}" != 0 ]]; then
	phase "make package"
	bash "$ROOT/scripts/package.sh"
else
	bash "$ROOT/scripts/venv.sh"
fi
[[ -s "$PKG/sizes.tsv" ]] || die "no packages in ${PKG#"$ROOT"/}: run make package"
mapfile -t ARCHS < <(cut -f1 "$PKG/sizes.tsv")
read -r _ ALLOWED_ARCHS < <("${CHECKS[@]}" archs template.yaml)

phase "tools: qemu-user-static, libc6-arm64-cross, readelf"
need_pkgs=()
command -v readelf >/dev/null || need_pkgs+=(binutils)
command -v qemu-x86_64-static >/dev/null && command -v qemu-aarch64-static >/dev/null || need_pkgs+=(qemu-user-static)
if [[ " ${ARCHS[*]} " == *" arm64 "* && ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]]; then
	need_pkgs+=(libc6-arm64-cross) # the arm64 loader and glibc for the bootstrap under qemu
fi
if ((${#need_pkgs[@]})); then
	log "installing Debian packages: ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
RAPID="$("$VENV/bin/python" -c 'import os, samcli; print(os.path.join(os.path.dirname(samcli.__file__), "local", "rapid"))')"
qemu-x86_64-static --version | head -n1

phase "the SAM transform of template.yaml: Function URL permissions, role against the code"
check "${CHECKS[@]}" iam template.yaml

phase "moto (Secrets Manager, DynamoDB) and the CRS sandbox"
MOTO="$(bash "$ROOT/scripts/moto.sh" start)"
PACKAGE_TEST_SIGNING_KEY="$("$VENV/bin/python" -c 'import base64, secrets; print("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())')"
export PACKAGE_TEST_SIGNING_KEY
AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
	"$VENV/bin/python" "$ROOT/scripts/seed_secrets.py" "$MOTO" "$PACKAGE_TEST_SIGNING_KEY"
TABLE=crs-restore-package-test
"${CHECKS[@]}" seed "$MOTO" "$TABLE"
# The sandbox is a fixture, not the artifact: the host's debug build serves it.
cargo build --locked --quiet --bin crs-sandbox
"${CARGO_TARGET_DIR:-$ROOT/target}/debug/crs-sandbox" --listen 127.0.0.1:0 --restore-seconds 1 \
	</dev/null >"$RUN_DIR/sandbox.log" 2>&1 &
echo $! >"$SANDBOX_PID"
SANDBOX_PORT="$(wait_listen_line "$RUN_DIR/sandbox.log" "crs-sandbox listening on" 20 "$(<"$SANDBOX_PID")")" ||
	die "crs-sandbox did not start; see ${RUN_DIR#"$ROOT"/}/sandbox.log"
SANDBOX="http://127.0.0.1:$SANDBOX_PORT"
API_VERSION="${TENCENT_API_VERSION:-3}"
case "$API_VERSION" in
2) TENCENT_ENDPOINT="$SANDBOX/v2/index.php" ;;
3) TENCENT_ENDPOINT="$SANDBOX/" ;;
*) die "TENCENT_API_VERSION must be 2 or 3" ;;
esac
log "moto $MOTO, sandbox $SANDBOX (Tencent API $API_VERSION), table $TABLE"

# The function's environment: template.yaml's variables, pointed at moto and the sandbox, and
# the variables Lambda sets itself (the emulator adds the runtime API address).
"$VENV/bin/python" -c 'import json, sys; print(json.dumps(dict(a.split("=", 1) for a in sys.argv[1:])))' \
	SIGNING_KEYS_SECRET_ID=crs-restore/signing-keys \
	TENCENT_CREDENTIALS_SECRET_ID=crs-restore/tencent \
	INSTANCE_PASSWORD_SECRET_PREFIX=crs-restore/instances/ \
	TENCENT_REGION=ap-guangzhou \
	TENCENT_API_VERSION="$API_VERSION" \
	TENCENT_ENDPOINT="$TENCENT_ENDPOINT" \
	IDEMPOTENCY_TABLE="$TABLE" \
	DRILL_ALLOWED_INSTANCES='crs-drill*' \
	WAIT_POLL_INITIAL_MS=200 WAIT_POLL_MAX_MS=500 \
	AWS_ENDPOINT_URL="$MOTO" \
	AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_SESSION_TOKEN=test \
	AWS_LAMBDA_FUNCTION_NAME=crs-restore-restore AWS_LAMBDA_FUNCTION_VERSION=\$LATEST \
	AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 AWS_LAMBDA_FUNCTION_TIMEOUT=120 \
	AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=INFO \
	>"$RUN_DIR/function-env.json"

# invoke LABEL ARCH BOOTSTRAP_CMD [RIE_PREFIX]: the three invocations under the emulator.
invoke() {
	local label="$1" arch="$2" bootstrap="$3" prefix="${4:-}"
	check "${CHECKS[@]}" invoke --label "$label" --rie "$RAPID/aws-lambda-rie-$arch" --rie-prefix "$prefix" \
		--bootstrap "$bootstrap" --task-dir "$RUN_DIR/task-$arch" --sandbox "$SANDBOX" \
		--env-file "$RUN_DIR/function-env.json" --log "$RUN_DIR/rie-$(tr -cs 'a-z0-9_' '-' <<<"${label,,}" | sed 's/-$//').log" \
		--report "$RUN_DIR/init.tsv"
}

for arch in ${ALLOWED_ARCHS//,/ }; do
	if [[ " ${ARCHS[*]} " != *" $arch "* ]]; then
		if rust_std_installed "$(rust_triple "$arch")"; then
			skip "$arch package: not packaged (PACKAGE_ARCHS), nothing of it tested"
		else
			skip "$arch package: not built or tested on this machine: no Rust standard library for $(rust_triple "$arch") (rustup target add $(rust_triple "$arch"))"
		fi
		continue
	fi
	task="$RUN_DIR/task-$arch"
	phase "$arch: .aws-sam/package/crs-restore-$arch.zip"
	start=$SECONDS
	check "${CHECKS[@]}" extract "$PKG/crs-restore-$arch.zip" "$task"
	check "${CHECKS[@]}" elf "$task/bootstrap" "$arch"
	case "$arch" in
	x86_64)
		invoke "x86_64" x86_64 "$task/bootstrap"
		# Cold starts only, for the emulator's own init figure (BENCHMARKS.md).
		check "${CHECKS[@]}" init --label "x86_64" --rie "$RAPID/aws-lambda-rie-x86_64" --bootstrap "$task/bootstrap" \
			--task-dir "$task" --env-file "$RUN_DIR/function-env.json" --runs "${PACKAGE_TEST_INIT_RUNS:-10}" \
			--log-dir "$RUN_DIR" --report "$RUN_DIR/init-runs.tsv"
		# A bootstrap built for a newer CPU than Lambda's oldest (target-cpu=native) dies of
		# SIGILL here: the emulator then reports an error instead of the answers.
		invoke "x86_64 on qemu -cpu Haswell" x86_64 "$(command -v qemu-x86_64-static) -cpu Haswell $task/bootstrap"
		;;
	arm64)
		# No binfmt_misc here: the arm64 emulator runs under qemu, and starts the bootstrap
		# through qemu too (with Debian's arm64 glibc and loader).
		invoke "arm64 on qemu -cpu neoverse-n1" arm64 \
			"$(command -v qemu-aarch64-static) -cpu neoverse-n1 -L /usr/aarch64-linux-gnu $task/bootstrap" \
			"$(command -v qemu-aarch64-static) -cpu neoverse-n1"
		;;
	esac
	log "$arch: $((SECONDS - start)) s"
done

passed="$(grep -c '^PASS ' "$OUT" || true)"
failed="$(grep -c '^FAIL ' "$OUT" || true)"
skipped="$(grep -c '^SKIP ' "$OUT" || true)"
printf '\n==> package-test summary (%d s)\n' $((SECONDS - total))
grep -E '^(PASS|FAIL|SKIP) ' "$OUT" | sed -E 's/^((PASS|FAIL|SKIP) [^:]*(:[^ ][^:]*)*): .*/  \1/'
if [[ -s "$RUN_DIR/init.tsv" ]]; then
	while IFS=$'\t' read -r label ms; do
		printf '  init reported by the emulator (INIT REPORT durationMs), %s: %s ms\n' "$label" "$ms"
	done <"$RUN_DIR/init.tsv"
fi
if [[ -s "$RUN_DIR/init-runs.tsv" ]]; then
	while IFS=$'\t' read -r label n p50 min max; do
		printf '  init reported by the emulator (INIT REPORT durationMs), %s, %d cold starts: p50 %s ms (min %s, max %s)\n' \
			"$label" "$n" "$p50" "$min" "$max"
	done <"$RUN_DIR/init-runs.tsv"
fi
printf 'package-test: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
((failed == 0))
