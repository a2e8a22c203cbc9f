#!/usr/bin/env bash
# Run crs-restore locally on loopback against the built-in CRS sandbox and moto (no AWS or
# Tencent account needed).
#
#   scripts/run-local.sh               start everything, print a signed curl, wait for Ctrl-C
#   scripts/run-local.sh --background  start everything, print the curl, return (pids in .run/)
#   scripts/run-local.sh --stop        stop a stack started with --background
#
# Env: PROFILE=release builds with --release; TENCENT_API_VERSION=3|2 (default 3: Tencent took
# Redis API 2.0 offline on its public cloud on 2023-01-01; 2 stays for private TCE clouds).
# The running stack is described in .run/local.env (exported shell variables: source it).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=foreground
case "${1:-}" in
"") ;;
--background | -b) MODE=background ;;
--stop) MODE=stop ;;
-h | --help)
	sed -n '2,10s/^# \{0,1\}//p' "$0"
	exit 0
	;;
*)
	echo "usage: $0 [--background|--stop]" >&2
	exit 2
	;;
esac

SANDBOX_PID="$RUN_DIR/sandbox.pid"
FUNCTION_PID="$RUN_DIR/crs-restore.pid"
LOCAL_ENV="$RUN_DIR/local.env"

stop_all() {
	stop_pidfile "$FUNCTION_PID" crs-restore
	stop_pidfile "$SANDBOX_PID" crs-sandbox
	bash "$ROOT/scripts/moto.sh" stop 2>/dev/null || true
	rm -f "$LOCAL_ENV"
}

if [[ "$MODE" == stop ]]; then
	stop_all
	log "local stack stopped"
	exit 0
fi

PROFILE="${PROFILE:-debug}"
case "$PROFILE" in
debug) BUILD_FLAGS=() ;;
release) BUILD_FLAGS=(--release) ;;
*) die "PROFILE must be debug or release, not '$PROFILE'" ;;
esac
API_VERSION="${TENCENT_API_VERSION:-3}"
[[ "$API_VERSION" == 2 || "$API_VERSION" == 3 ]] || die "TENCENT_API_VERSION must be 2 or 3"
BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE"

# From here on, a failure or Ctrl-C tears down whatever was started; in --background mode a
# successful start disarms this at the end.
KEEP=0
on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if ((KEEP == 0)); then
		stop_all
		((rc == 0 || rc == 130)) && log "stopped crs-restore, the sandbox and moto"
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# show_failure NAME LOG: say that NAME did not start, with the end of its log.
show_failure() {
	log "error: $1 did not start; last lines of ${2#"$ROOT"/}:"
	tail -n 20 "$2" >&2 || true
}

stop_all # leftovers of an earlier run
mkdir -p "$RUN_DIR"

log "==> venv"
bash "$ROOT/scripts/venv.sh"

log "==> cargo build --bins${BUILD_FLAGS[*]:+ ${BUILD_FLAGS[*]}}"
cargo build --bins "${BUILD_FLAGS[@]}"

log "==> moto"
MOTO="$(bash "$ROOT/scripts/moto.sh" start)"

log "==> crs-sandbox"
"$BIN_DIR/crs-sandbox" --listen 127.0.0.1:0 </dev/null >"$RUN_DIR/sandbox.log" 2>&1 &
echo $! >"$SANDBOX_PID"
if ! SANDBOX_PORT="$(wait_listen_line "$RUN_DIR/sandbox.log" "crs-sandbox listening on" 10 "$(<"$SANDBOX_PID")")"; then
	show_failure crs-sandbox "$RUN_DIR/sandbox.log"
	exit 1
fi
SANDBOX="http://127.0.0.1:$SANDBOX_PORT"
log "sandbox listening at $SANDBOX"
if [[ "$API_VERSION" == 3 ]]; then
	TENCENT_ENDPOINT="$SANDBOX/"
else
	TENCENT_ENDPOINT="$SANDBOX/v2/index.php"
fi

# Fresh keys for every run: whsec_ + base64 of 24 random bytes; the hex form is for openssl.
read -r SIGNING_KEY SIGNING_KEY_HEX CALLBACK_SECRET < <(python3 -c 'import base64, secrets
k = secrets.token_bytes(24)
print("whsec_" + base64.b64encode(k).decode(), k.hex(), "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())')

log "==> seed Secrets Manager"
AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
	"$VENV/bin/python" "$ROOT/scripts/seed_secrets.py" "$MOTO" "$SIGNING_KEY" "$CALLBACK_SECRET"

# The function's environment, also written to .run/local.env for other tools.
FN_ENV=(
	"SIGNING_KEYS_SECRET_ID=crs-restore/signing-keys"
	"TENCENT_CREDENTIALS_SECRET_ID=crs-restore/tencent"
	"INSTANCE_PASSWORD_SECRET_PREFIX=crs-restore/instances/"
	"TENCENT_REGION=ap-guangzhou"
	"TENCENT_ENDPOINT=$TENCENT_ENDPOINT"
	"TENCENT_API_VERSION=$API_VERSION"
	"AWS_ENDPOINT_URL=$MOTO"
	"AWS_REGION=us-east-1"
	"AWS_DEFAULT_REGION=us-east-1"
	"AWS_ACCESS_KEY_ID=test"
	"AWS_SECRET_ACCESS_KEY=test"
	"CALLBACK_ALLOW_LOOPBACK=true"
)
write_env() {
	write_env_file "$LOCAL_ENV" "$BIN_DIR" "$@"
}
STACK_ENV=(
	"MOTO_ENDPOINT=$MOTO"
	"SANDBOX_URL=$SANDBOX"
	"SIGNING_KEY_ID=local-dev"
	"SIGNING_KEY=$SIGNING_KEY"
	"CRS_RESTORE_SIGNING_KEY=$SIGNING_KEY"
	"SIGNING_KEY_HEX=$SIGNING_KEY_HEX"
	"CALLBACK_SECRET=$CALLBACK_SECRET"
	"${FN_ENV[@]}"
)
write_env "${STACK_ENV[@]}"

log "==> crs-restore (local mode, Tencent API $API_VERSION)"
env "${FN_ENV[@]}" CRS_RESTORE_LOCAL_ADDR=127.0.0.1:0 \
	"$BIN_DIR/crs-restore" </dev/null >"$RUN_DIR/crs-restore.log" 2>&1 &
echo $! >"$FUNCTION_PID"
if ! FN_PORT="$(wait_listen_line "$RUN_DIR/crs-restore.log" "crs-restore listening on" 20 "$(<"$FUNCTION_PID")")"; then
	show_failure crs-restore "$RUN_DIR/crs-restore.log"
	exit 1
fi
URL="http://127.0.0.1:$FN_PORT/"
write_env "CRS_RESTORE_URL=$URL" "${STACK_ENV[@]}"

cat <<BLOCK

crs-restore is listening at $URL (sandbox $SANDBOX, moto $MOTO, Tencent API $API_VERSION).
Tencent API 3.0 is the default: Tencent took Redis API 2.0 fully offline on its public cloud on 2023-01-01.
Paste this to send a signed restore request (it signs when pasted, so it never goes stale):

BODY='{"redisId":"crs-izbob1wh","backupId":"e824aecc-ef5e-11e6-a2c7-525400082493","reason":"make run demo"}'
ID="msg_\$(date +%s%N)"; TS="\$(date +%s)"
SIG="\$(printf '%s.%s.%s' "\$ID" "\$TS" "\$BODY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$SIGNING_KEY_HEX -binary | base64)"
curl -sS -X POST $URL -H 'content-type: application/json' -H "webhook-id: \$ID" -H "webhook-timestamp: \$TS" -H "webhook-signature: v1,\$SIG" -d "\$BODY"

BLOCK
if [[ "$API_VERSION" == 3 ]]; then
	cat <<BLOCK
A Redis 6.2 instance restores by clone (a new instance; the sandbox's purchases are free). Dry run
first, then the clone (the same lines with this BODY):

BODY='{"redisId":"crs-orders62","backupId":"latest","mode":"clone","dryRun":true,"reason":"make run demo"}'
BODY='{"redisId":"crs-orders62","backupId":"latest","mode":"clone","reason":"make run demo"}'

BLOCK
else
	echo "Tencent API 2.0 was taken offline on Tencent's public cloud on 2023-01-01; TENCENT_API_VERSION=2 is for private TCE clouds and the original API description."
	echo
fi
cat <<BLOCK
Logs: .run/*.log (crs-restore.log, sandbox.log, moto.log); the stack's env: .run/local.env.
BLOCK

if [[ "$MODE" == background ]]; then
	KEEP=1
	echo "Running in the background; stop with: scripts/run-local.sh --stop (or make clean-run)."
	exit 0
fi
echo "Ctrl-C stops everything."

# Stay in the foreground until Ctrl-C, or until one of the processes dies.
while true; do
	for p in "$FUNCTION_PID:crs-restore" "$SANDBOX_PID:crs-sandbox" "$RUN_DIR/moto.pid:moto_server"; do
		if ! pid_alive "${p%%:*}" "${p#*:}"; then
			log "error: ${p#*:} exited; see .run/*.log"
			exit 1
		fi
	done
	sleep 1 &
	wait $! || true
done
