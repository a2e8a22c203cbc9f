# shellcheck shell=bash
# Shared helpers for scripts/*.sh. Source it; it cd's to the repo root.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

# Where pid, endpoint and log files go. Override to run a second, separate stack.
RUN_DIR="${RUN_DIR:-$ROOT/.run}"
case "$RUN_DIR" in /*) ;; *) RUN_DIR="$ROOT/$RUN_DIR" ;; esac
# shellcheck disable=SC2034 # used by the scripts that source this file
VENV="$ROOT/.venv"

# Everything we talk to is on loopback: never route it through a proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

log() { printf '%s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# A free TCP port on 127.0.0.1 (the kernel picks it; there is a small race until it is bound).
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# pid_alive PIDFILE NAME: true when PIDFILE names a live process whose command line contains NAME.
pid_alive() {
	local pidfile="$1" name="$2" pid
	[[ -s "$pidfile" ]] || return 1
	pid="$(<"$pidfile")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[[ -r "/proc/$pid/cmdline" ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$name"
}

# stop_pidfile PIDFILE NAME: TERM the process (only if it still is NAME), KILL after 5 s, remove PIDFILE.
stop_pidfile() {
	local pidfile="$1" name="$2" pid i
	if pid_alive "$pidfile" "$name"; then
		pid="$(<"$pidfile")"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
		# Reap it if it is our own child (no-op otherwise).
		wait "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

# wait_http URL SECONDS [PID]: poll URL until it answers (any HTTP status), or fail.
wait_http() {
	local url="$1" secs="$2" pid="${3:-}" deadline
	deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		if command -v curl >/dev/null; then
			curl -s --noproxy '*' --max-time 1 -o /dev/null "$url" && return 0
		else
			python3 -c 'import sys, urllib.request as u
try:
    u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=1)
except u.HTTPError:
    pass' "$url" 2>/dev/null && return 0
		fi
		if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.2
	done
	return 1
}

# wait_listen_line LOGFILE PREFIX SECONDS PID: wait for a line "PREFIX http://127.0.0.1:PORT" in LOGFILE; print PORT.
wait_listen_line() {
	local logfile="$1" prefix="$2" secs="$3" pid="$4" deadline line
	deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		line="$(grep -m1 -F -- "$prefix http://127.0.0.1:" "$logfile" 2>/dev/null || true)"
		if [[ "$line" =~ http://127\.0\.0\.1:([0-9]+) ]]; then
			printf '%s\n' "${BASH_REMATCH[1]}"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# bench_setup NAME: what `make bench` and `make load` share. Sets RUN_DIR (.run/NAME), OUT and
# BIN, stops moto on exit, builds the release binaries (the same package set for both, so they
# share one feature resolution and never rebuild each other's), starts moto and sets MOTO.
# shellcheck disable=SC2034  # OUT, BIN and MOTO are read by the calling script
bench_setup() {
	export RUN_DIR="$ROOT/.run/$1"
	OUT="${BENCH_OUT:-$ROOT/bench/results}"
	BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
	trap 'bash "$ROOT/scripts/moto.sh" stop >/dev/null 2>&1 || true' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	log "==> venv"
	bash "$ROOT/scripts/venv.sh"
	log "==> cargo build --release (crs-restore, crs-sandbox; then the harness and hello-world)"
	cargo build --locked --release --bins
	cargo build --locked --release -p crs-bench -p hello-lambda
	log "==> moto"
	MOTO="$(bash "$ROOT/scripts/moto.sh" start)"
}

# write_env_file FILE BIN_DIR NAME=VALUE...: a file that `source FILE` turns into exported
# variables (so programs started from that shell, such as crs-restore-cli, see them), with
# BIN_DIR put first on PATH. Written whole, then renamed, so a reader never sees half of it.
write_env_file() {
	local file="$1" bin_dir="$2" kv
	shift 2
	{
		echo "# Written by scripts/run-local.sh; describes the running local stack. Source it."
		for kv in "$@"; do
			printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
		done
		# shellcheck disable=SC2016 # $PATH expands when the file is sourced, not now
		printf 'export PATH=%q:"$PATH"\n' "$bin_dir"
	} >"$file.tmp"
	mv "$file.tmp" "$file"
}

# --- Packaging (scripts/package.sh, scripts/package-test.sh) ------------------------------------

# rust_triple ARCH: the Rust target of a Lambda architecture (arm64 | x86_64).
rust_triple() {
	case "$1" in
	arm64) echo aarch64-unknown-linux-gnu ;;
	x86_64) echo x86_64-unknown-linux-gnu ;;
	*) die "unknown Lambda architecture '$1'" ;;
	esac
}

# rust_std_installed TRIPLE: true when the active toolchain has the standard library for TRIPLE.
rust_std_installed() {
	local dir
	dir="$(rustc --print target-libdir --target "$1" 2>/dev/null)" || return 1
	compgen -G "$dir/libstd-*.rlib" >/dev/null
}

# sam_build_dir ARCH DEFAULT_ARCH: where `make package` has `sam build` put ARCH's build. The
# template's default architecture goes to SAM's own default, so a plain `sam deploy` deploys it.
sam_build_dir() {
	if [[ "$1" == "$2" ]]; then
		echo "$ROOT/.aws-sam/build"
	else
		echo "$ROOT/.aws-sam/build-$1"
	fi
}

# bc_mib BYTES: BYTES in MiB with two decimals.
bc_mib() {
	awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'
}
