#!/usr/bin/env bash
# Validate the SAM template offline, without AWS credentials:
#   1. cfn-lint                        (schemas, property values, best-practice warnings)
#   2. sam validate                    (runs the SAM transform: catches what the linter cannot)
#   3. sam validate --lint             (SAM CLI's own cfn-lint pass, as `sam deploy` users see it)
#   4. scripts/check-template.py       (the project's own invariants, e.g. bounded concurrency)
# Every check runs even after an earlier one failed; the exit status is non-zero if any failed.
# Usage: scripts/validate-template.sh [TEMPLATE]   (default: template.yaml at the repo root)
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TEMPLATE="${1:-template.yaml}"
[[ -f "$TEMPLATE" ]] || die "no template at $TEMPLATE"
for tool in cfn-lint sam; do
	[[ -x "$VENV/bin/$tool" ]] || die "$VENV/bin/$tool is missing: run scripts/venv.sh (requirements-dev.txt)"
done

# No telemetry, no network look-ups, no credentials or profiles from the environment.
export SAM_CLI_TELEMETRY=0
export SAM_CLI_DISABLE_UPDATE_CHECK=1 # older SAM CLIs; harmless on newer ones
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
REGION=us-east-1

failed=()
check() {
	local name="$1" out rc=0
	shift
	out="$("$@" 2>&1)" || rc=$?
	[[ -z "$out" ]] || printf '%s\n' "$out"
	if ((rc == 0)); then
		printf -- '--> %s ok\n' "$name"
	else
		printf -- '--> %s FAILED (exit %d)\n' "$name" "$rc"
		failed+=("$name")
	fi
}

# cfn-lint prints nothing when the template is clean; any warning (W...) also exits non-zero.
check cfn-lint "$VENV/bin/cfn-lint" -- "$TEMPLATE"
# samconfig.toml sets `lint = true` for validate, which replaces the transform with the linter:
# give the transform-only run an empty config file of its own.
EMPTY_CONFIG="$(mktemp --suffix=.toml)"
trap 'rm -f "$EMPTY_CONFIG"' EXIT
echo 'version = 0.1' >"$EMPTY_CONFIG"
check "sam validate" "$VENV/bin/sam" validate --region "$REGION" -t "$TEMPLATE" --config-file "$EMPTY_CONFIG"
check "sam validate --lint" "$VENV/bin/sam" validate --lint --region "$REGION" -t "$TEMPLATE"
check "template invariants" "$VENV/bin/python" "$ROOT/scripts/check-template.py" "$TEMPLATE"

if ((${#failed[@]})); then
	printf 'template validation FAILED: %s\n' "${failed[*]}" >&2
	exit 1
fi
printf 'template validation ok: %s\n' "$TEMPLATE"
