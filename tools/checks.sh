#!/usr/bin/env bash
# Static checks of the deployable artefacts and the code (`make check`, run by .ci/run).
#
#   1. the committed IAM policies match tools/policies.py           (tools.policies --check)
#   2. `chalice package` of both stages passes cfn-lint               (any error or warning fails)
#   3. writer, reader and key policies: parliament, nothing above LOW (LOW findings are printed)
#   4. bandit: no medium or high finding in chalicelib/, tools/, app.py
#   5. pip-audit --strict on requirements.txt: every runtime dependency actually audited
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

step "chalice package (writer, reader) + cfn-lint"
if make --no-print-directory package; then
    "$BIN/cfn-lint" out/writer/sam.json out/reader/sam.json && echo "cfn-lint: no findings" \
        || fail "cfn-lint"
else
    fail "chalice package"
fi

step "parliament: writer, reader and key policies (fails above LOW)"
# The key policy as `tools.policies --key-policy` prints it for the committed resources.
# Its LOW findings are by design: in a key policy "Resource": "*" means "this key".
key_policy="$(mktemp)"
trap 'rm -f "$key_policy"' EXIT
if "$BIN/python" -m tools.policies --key-policy >"$key_policy"; then
    for name in .chalice/policy-writer.json .chalice/policy-reader.json "$key_policy"; do
        label="$name"; [ "$name" = "$key_policy" ] && label="key policy"
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
# --strict: a dependency the vulnerability service cannot look up is an error. Without
# it pip-audit prints "No known vulnerabilities found" and exits 0 after auditing nothing.
if ! "$BIN/pip-audit" --strict --progress-spinner off -r requirements.txt; then
    echo "pip-audit asks https://pypi.org/pypi/<name>/<version>/json for each pin (the 'vulnerabilities'"
    echo "field). 'Dependency not found on PyPI' means that endpoint did not answer (a mirror or proxy"
    echo "without it); 'pip-audit -s osv' uses https://api.osv.dev instead. Not auditing is a failure."
    fail "pip-audit (a dependency could not be audited, or has a known vulnerability)"
fi

printf '\n'
if [ ${#failed[@]} -gt 0 ]; then
    printf 'checks FAILED (%d): %s\n' "${#failed[@]}" "$(IFS=';'; echo "${failed[*]}")"
    exit 1
fi
echo "checks passed"
