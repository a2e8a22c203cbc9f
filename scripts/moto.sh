#!/usr/bin/env bash
# scripts/moto.sh start|stop|status — a moto server (AWS mock) on a free 127.0.0.1 port.
# Files: $RUN_DIR/moto.pid, $RUN_DIR/moto.endpoint, $RUN_DIR/moto.log (RUN_DIR defaults to .run).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PIDFILE="$RUN_DIR/moto.pid"
ENDPOINT_FILE="$RUN_DIR/moto.endpoint"
LOGFILE="$RUN_DIR/moto.log"
NAME="moto_server"

start() {
	mkdir -p "$RUN_DIR"
	if pid_alive "$PIDFILE" "$NAME" && [[ -s "$ENDPOINT_FILE" ]] && wait_http "$(<"$ENDPOINT_FILE")/moto-api/" 2; then
		log "moto already running at $(<"$ENDPOINT_FILE") (pid $(<"$PIDFILE"))"
		cat "$ENDPOINT_FILE"
		return 0
	fi
	stop_pidfile "$PIDFILE" "$NAME"
	rm -f "$ENDPOINT_FILE"
	[[ -x "$VENV/bin/moto_server" ]] || die "$VENV/bin/moto_server missing: run scripts/venv.sh (make venv)"

	local attempt port pid endpoint
	for attempt in 1 2 3; do
		port="$(free_port)"
		endpoint="http://127.0.0.1:$port"
		"$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$LOGFILE" 2>&1 &
		pid=$!
		echo "$pid" >"$PIDFILE"
		if wait_http "$endpoint/moto-api/" 20 "$pid"; then
			echo "$endpoint" >"$ENDPOINT_FILE"
			log "moto listening at $endpoint (pid $pid, log ${LOGFILE#"$ROOT"/})"
			echo "$endpoint"
			return 0
		fi
		stop_pidfile "$PIDFILE" "$NAME"
		log "moto did not come up on port $port (attempt $attempt); log tail:"
		tail -n 5 "$LOGFILE" >&2 || true
	done
	die "could not start moto_server"
}

stop() {
	if pid_alive "$PIDFILE" "$NAME"; then
		stop_pidfile "$PIDFILE" "$NAME"
		log "moto stopped"
	else
		rm -f "$PIDFILE"
	fi
	rm -f "$ENDPOINT_FILE"
}

status() {
	if pid_alive "$PIDFILE" "$NAME"; then
		echo "moto running at $(cat "$ENDPOINT_FILE" 2>/dev/null || echo '?') (pid $(<"$PIDFILE"))"
	else
		echo "moto not running"
		return 1
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
