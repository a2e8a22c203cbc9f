#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (policy in deny.toml): licenses, bans, sources.
# Installs cargo-deny into ~/.cargo/bin when missing (about 4 minutes on 2 cores, once).
# The advisories check needs the RustSec database from the network: it runs only with
# CARGO_DENY_ADVISORIES=1, where that database can be fetched.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CARGO_DENY_VERSION="0.20.2"

if ! cargo deny --version >/dev/null 2>&1; then
	log "cargo-deny not found: installing $CARGO_DENY_VERSION from crates.io (cached in ~/.cargo/bin)"
	cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION"
fi

checks=(licenses bans sources)
if [[ "${CARGO_DENY_ADVISORIES:-0}" == 1 ]]; then
	checks+=(advisories)
else
	echo "cargo deny: advisories skipped (needs the RustSec database from the network; set CARGO_DENY_ADVISORIES=1 where it is reachable)"
fi
cargo deny --locked check "${checks[@]}"
