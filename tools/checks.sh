#!/usr/bin/env bash
# Static checks of the deployable artefacts and the code (`make check`, run by .ci/run).
#
#   0. the committed caller policies match tools/access.py (--check), and .chalice/config.json the
#      stage registry (python -m infra chalice-config --check)
#   1. `make package` writes every template (out/base.json, out/<stage>/sam.json); none holds
#      a literal account id
#   2. cfn-lint on every template                                     (any error or warning fails)
#   3. checkov on every template: zero failed checks; the skips are in the templates
#      themselves (infra/cfn.py TYPE_SKIPS and each spec's own skips, one reason each)
#   3b. parliament on every IAM, key and API resource policy the templates hold, nothing above LOW
#   4. bandit: no medium or high finding in chalicelib/, infra/, tools/, app.py
#   5. pip-audit on requirements.txt: no known vulnerability; unaudited pins listed loudly
#   6. ruff: lint (the rules in pyproject.toml) and `ruff format --check`, whole tree
#   7. import layers: lint-imports (pyproject.toml [tool.importlinter])
#   8. mypy: strict on app.py, chalicelib/, infra/, tools/, bench/, the client and tests/ (pyproject.toml [tool.mypy])
#   9. the documentation: `make docs` (generated tables fresh, mkdocs build --strict), then its
#      checks and examples (tests/unit/test_docs.py, tests/e2e/test_docs_examples.py: every
#      runnable block of the README, SECURITY.md and docs/ against one local stack)
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

step "caller policies: committed files match the generator"
"$BIN/python" -m tools.access --check || fail "access --check"
"$BIN/python" -m infra chalice-config --check && echo "chalice config: generated from the registry" \
    || fail "infra chalice-config --check"

step "make package: every template"
templates=()
if make --no-print-directory package; then
    templates=(out/base.json out/*/sam.json)
    printf 'templates: %s\n' "${templates[*]}"
    # No literal account id in any generated artefact: 12 digits standing alone.
    if grep -EnH '(^|[^0-9])[0-9]{12}([^0-9]|$)' "${templates[@]}" out/merge-*.json; then
        fail "literal account id in a generated template"
    fi
else
    fail "make package"
fi

if [ ${#templates[@]} -gt 0 ]; then
    step "cfn-lint: ${templates[*]}"
    "$BIN/cfn-lint" "${templates[@]}" && echo "cfn-lint: no findings" || fail "cfn-lint"

    step "checkov: ${templates[*]}"
    CHECKOV="${CHECKOV:-.venv-checkov/bin/checkov}"
    if [ ! -x "$CHECKOV" ]; then
        make --no-print-directory .venv-checkov >/dev/null || fail "install checkov (requirements-checkov.txt)"
    fi
    for template in "${templates[@]}"; do
        # --skip-download: no Prisma Cloud lookups (offline CI); the checks ship with checkov.
        report="$("$CHECKOV" -f "$template" --framework cloudformation --compact --skip-download 2>/dev/null)"
        status=$?
        summary="$(printf '%s\n' "$report" | grep -m1 'Passed checks')"
        printf '%s: %s\n' "$template" "${summary:-no summary (checkov exit $status)}"
        printf '%s\n' "$report" | grep -A1 'FAILED for' || true
        if [ $status -ne 0 ] || [ -z "$summary" ]; then fail "checkov $template"; fi
    done
fi

step "parliament: every IAM, key and API resource policy (fails above LOW)"
# The documents the templates hold (infra.iam, as `python -m infra policies` writes them for
# example ARNs: every stage role's policy, every key's, the API resource policies), and the
# committed caller policies. LOW findings are by design: in a key policy "Resource": "*"
# means "this key". The API resource policies are linted in their full-ARN form, as API
# Gateway stores them (parliament does not know the execute-api:/* shorthand). The tenant
# roles' trust policy is not linted: parliament requires a Resource, which a trust policy
# has none of (tests/unit/test_caller_access.py evaluates it instead).
policy_dir="$(mktemp -d)"
trap 'rm -rf "$policy_dir"' EXIT
if "$BIN/python" -m infra policies "$policy_dir"; then
    for name in "$policy_dir"/*.json policies/callers/*-caller-*.json; do
        label="$(basename "$name")"
        # --string, not --file: parliament refuses --file when stdin is not a terminal (CI).
        all="$("$BIN/parliament" --string "$(cat "$name")")"
        printf '%s: %s\n' "$label" "${all:-no findings}"
        if ! "$BIN/parliament" --minimum_severity MEDIUM --string "$(cat "$name")" >/dev/null; then
            fail "parliament $label (finding above LOW)"
        fi
    done
else
    fail "infra policies"
fi

step "bandit (medium and high)"
"$BIN/bandit" -q -ll -r chalicelib infra tools app.py 2>/dev/null && echo "bandit: no medium/high findings" \
    || fail "bandit"

step "pip-audit requirements.txt"
# Any known vulnerability in a runtime pin fails. A pin the vulnerability service cannot
# look up is NOT silently passed (pip-audit alone would print "No known vulnerabilities
# found" after auditing nothing): it is listed as unaudited, loudly, and fails when
# PII_VAULT_REQUIRE_AUDIT=1. It does not fail by default because this project's CI machines
# reach no vulnerability service: the package index is reachable only through a proxy that
# serves packages, not vulnerability data (see docs/development.md, "Checks").
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

step "ruff: lint and format (pyproject.toml)"
"$BIN/ruff" check . && echo "ruff check: no findings" || fail "ruff check"
"$BIN/ruff" format --check . || fail "ruff format --check (run: .venv/bin/ruff format .)"

step "import layers (lint-imports; pyproject.toml [tool.importlinter])"
"$BIN/lint-imports" --no-cache >/dev/null && echo "lint-imports: layers kept" || { "$BIN/lint-imports" --no-cache; fail "lint-imports"; }

step "mypy (strict; pyproject.toml)"
"$BIN/mypy" || fail "mypy"

step "documentation: make docs (generated tables fresh, mkdocs build --strict) and its examples"
make --no-print-directory docs && echo "docs: built site/ strictly" || fail "make docs"
"$BIN/python" -m pytest -q -p no:cacheprovider tests/unit/test_docs.py tests/e2e/test_docs_examples.py \
    || fail "docs examples (tests/e2e/test_docs_examples.py)"

printf '\n'
if [ ${#failed[@]} -gt 0 ]; then
    printf 'checks FAILED (%d): %s\n' "${#failed[@]}" "$(IFS=';'; echo "${failed[*]}")"
    exit 1
fi
echo "checks passed"
