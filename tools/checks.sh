#!/usr/bin/env bash
# Static checks of the deployable artefacts and the code (`make check`, run by .ci/run).
#
#   1. the committed IAM policies match tools/policies.py and tools/access.py (--check)
#   2. `chalice package` of both stages passes cfn-lint               (any error or warning fails)
#   3. writer, reader, key, caller and API resource policies: parliament, nothing above LOW
#   4. bandit: no medium or high finding in chalicelib/, tools/, app.py
#   5. pip-audit on requirements.txt: no known vulnerability; unaudited pins listed loudly
#
# Every check runs even when an earlier one fails; the summary lists the failures and
# the exit status is 1 if any failed. Expects the venv (`make .venv`) and AWS_DEFAULT_REGION.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
BIN="$VENV/bin"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
failed=()

step() { printf '\n== %s\n' "$1"; }
fail() { failed+=("$1"); printf 'FAILED: %s\n' "$1"; }

step "policies: committed files match the generator"
"$BIN/python" -m tools.policies --check || fail "policies --check"
"$BIN/python" -m tools.access --check || fail "access --check"

step "chalice package (writer, reader) + cfn-lint"
if make --no-print-directory package; then
    "$BIN/cfn-lint" out/writer/sam.json out/reader/sam.json && echo "cfn-lint: no findings" \
        || fail "cfn-lint"
else
    fail "chalice package"
fi

step "parliament: writer, reader, key, caller and API resource policies (fails above LOW)"
# The key policy as `tools.policies --key-policy` prints it for the committed resources.
# Its LOW findings are by design: in a key policy "Resource": "*" means "this key".
# The API resource policy is linted in its full-ARN form (parliament does not know API
# Gateway's execute-api:/* shorthand). The tenant roles' trust policy is not linted:
# parliament requires a Resource, which a trust policy has none of (tests/unit/test_caller_access.py
# evaluates it instead).
key_policy="$(mktemp)"
api_policy="$(mktemp)"
trap 'rm -f "$key_policy" "$api_policy"' EXIT
"$BIN/python" -c 'import json; from tools.access import api_resource_policy as p; print(json.dumps(p("writer", ["arn:aws:iam::111122223333:role/pii-vault-writer-caller"], "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*")))' >"$api_policy" \
    || fail "tools.access api_resource_policy"
if "$BIN/python" -m tools.policies --key-policy >"$key_policy"; then
    for name in .chalice/policy-writer.json .chalice/policy-reader.json "$key_policy" \
            policies/callers/*-caller-*.json "$api_policy"; do
        label="$name"; [ "$name" = "$key_policy" ] && label="key policy"; [ "$name" = "$api_policy" ] && label="API resource policy"
        # --string, not --file: parliament refuses --file when stdin is not a terminal (CI).
        all="$("$BIN/parliament" --string "$(cat "$name")")"
        printf '%s: %s\n' "$label" "${all:-no findings}"
        if ! "$BIN/parliament" --minimum_severity MEDIUM --string "$(cat "$name")" >/dev/null; then
            fail "parliament $label (finding above LOW)"
        fi
    done
else
    fail "tools.policies --key-policy"
fi

step "bandit (medium and high)"
"$BIN/bandit" -q -ll -r chalicelib tools app.py 2>/dev/null && echo "bandit: no medium/high findings" \
    || fail "bandit"

step "pip-audit requirements.txt"
# Any known vulnerability in a runtime pin fails. A pin the vulnerability service cannot
# look up is NOT silently passed (pip-audit alone would print "No known vulnerabilities
# found" after auditing nothing): it is listed as unaudited, loudly, and fails when
# PII_VAULT_REQUIRE_AUDIT=1. It does not fail by default because this project's CI machines
# reach no vulnerability service: the package index is reachable only through a proxy that
# serves packages, not vulnerability data (see the README, "Checks").
audit_json="$(mktemp)"
"$BIN/pip-audit" --progress-spinner off -r requirements.txt -f json -o "$audit_json" >/dev/null 2>&1
"$BIN/python" - "$audit_json" <<'PY' || fail "pip-audit"
import json, os, sys
report = json.load(open(sys.argv[1]))
deps = report.get("dependencies", [])
vulnerable = [(d["name"], d["version"], [v["id"] for v in d["vulns"]]) for d in deps if d.get("vulns")]
unaudited = [d["name"] for d in deps if d.get("skip_reason")]
print(f"pip-audit: {len(deps)} dependencies, {len(deps) - len(unaudited)} audited, {len(vulnerable)} vulnerable")
for name, version, ids in vulnerable:
    print(f"  VULNERABLE {name}=={version}: {', '.join(ids)}")
if unaudited:
    print(f"  UNAUDITED (no vulnerability service reachable): {', '.join(unaudited)}")
required = os.environ.get("PII_VAULT_REQUIRE_AUDIT") == "1"
sys.exit(1 if vulnerable or (unaudited and required) or not deps else 0)
PY
rm -f "$audit_json"

printf '\n'
if [ ${#failed[@]} -gt 0 ]; then
    printf 'checks FAILED (%d): %s\n' "${#failed[@]}" "$(IFS=';'; echo "${failed[*]}")"
    exit 1
fi
echo "checks passed"
