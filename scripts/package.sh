#!/usr/bin/env bash
# `make package`: the deployment artifacts, built by `sam build` itself from template.yaml (its
# BuildMethod rust-cargolambda runs `cargo lambda build --release [--arm64] --bin <Binary>`, and
# cargo-lambda adds `-C target-cpu=neoverse-n1` / `haswell`), for every architecture the template
# allows and this machine can build, then zipped the way `sam deploy` zips them.
#
#   .aws-sam/build/              the template's default architecture (arm64): what a plain
#                                `sam deploy` deploys
#   .aws-sam/build-<arch>/       each other architecture (`sam deploy -t .aws-sam/build-x86_64/template.yaml`)
#   .aws-sam/package/crs-restore-<arch>.zip   the code zip `sam deploy` uploads for that build
#   .aws-sam/package/sizes.tsv   arch, bootstrap bytes, zip bytes, zip md5 (also printed)
#
# Env: PACKAGE_ARCHS (default: every architecture the template allows) limits the list;
# CARGO_TARGET_DIR is honoured (SAM passes it through to cargo-lambda).
# An architecture whose Rust standard library is not installed is skipped with a SKIP line
# (`rustup target add aarch64-unknown-linux-gnu` installs arm64's); PACKAGE_REQUIRE_ALL=1 makes
# that a failure instead.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log "==> venv"
bash "$ROOT/scripts/venv.sh"
# sam finds cargo-lambda (and cargo-lambda finds zig) on PATH.
export PATH="$VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
CHECKS=("$VENV/bin/python" "$ROOT/scripts/package_checks.py")

read -r DEFAULT_ARCH ALLOWED_ARCHS < <("${CHECKS[@]}" archs template.yaml)
ARCHS="${PACKAGE_ARCHS:-$ALLOWED_ARCHS}"
ARCHS="${ARCHS//,/ }"

PKG="$ROOT/.aws-sam/package"
mkdir -p "$PKG"
: >"$PKG/sizes.tsv.tmp"
built=()
skipped=()
for arch in $ARCHS; do
	[[ " ${ALLOWED_ARCHS//,/ } " == *" $arch "* ]] || die "template.yaml does not allow Architecture=$arch (allowed: $ALLOWED_ARCHS)"
	triple="$(rust_triple "$arch")"
	if ! rust_std_installed "$triple"; then
		msg="no Rust standard library for $triple on this machine (rustup target add $triple)"
		if [[ "${PACKAGE_REQUIRE_ALL:-0}" == 1 ]]; then
			die "$arch: $msg"
		fi
		printf 'SKIP package %s: %s\n' "$arch" "$msg"
		skipped+=("$arch")
		rm -f "$PKG/crs-restore-$arch.zip"
		continue
	fi
	build_dir="$(sam_build_dir "$arch" "$DEFAULT_ARCH")"
	log "==> sam build, Architecture=$arch -> ${build_dir#"$ROOT"/}"
	start=$SECONDS
	# --no-cached: cargo's own incremental build is the cache; SAM's would checksum the whole
	# source tree (./, target/ included) on every run.
	sam build --no-cached --build-dir "$build_dir" --parameter-overrides "Architecture=$arch"
	log "sam build $arch: $((SECONDS - start)) s"
	"${CHECKS[@]}" zip "$build_dir" "$arch" "$PKG/crs-restore-$arch.zip" >>"$PKG/sizes.tsv.tmp"
	built+=("$arch")
done
mv "$PKG/sizes.tsv.tmp" "$PKG/sizes.tsv"
((${#built[@]})) || die "nothing was built (skipped: ${skipped[*]})"

printf '\n%-8s %14s %14s  %s\n' arch bootstrap zip "zip (what sam deploy uploads)"
while IFS=$'\t' read -r arch raw zipped md5; do
	printf '%-8s %8.2f MiB %8.2f MiB  %s (md5 %s)\n' "$arch" "$(bc_mib "$raw")" "$(bc_mib "$zipped")" \
		".aws-sam/package/crs-restore-$arch.zip" "$md5"
done <"$PKG/sizes.tsv"
((${#skipped[@]} == 0)) || printf 'not built here: %s\n' "${skipped[*]}"
