#!/usr/bin/env bash
# Create .venv and install requirements-dev.txt into it; a no-op while .venv/.stamp is newer.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQ="$ROOT/requirements-dev.txt"
STAMP="$VENV/.stamp"

if [[ -f "$STAMP" && "$STAMP" -nt "$REQ" ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
	exit 0
fi

PY="${PYTHON:-python3}"
if ! "$VENV/bin/python" -c '' 2>/dev/null; then
	rm -rf "$VENV"
	if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
		rm -rf "$VENV"
		log "python3 -m venv failed; installing Debian's python3-venv"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq python3-venv >/dev/null
		PY=/usr/bin/python3
		"$PY" -m venv "$VENV"
	fi
fi

log "installing requirements-dev.txt into .venv ..."
start=$SECONDS
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
touch "$STAMP"
log ".venv ready ($((SECONDS - start)) s)"
