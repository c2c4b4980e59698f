# pii-vault developer commands. `make dev` runs the local stack, `make test` all test tiers.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements.stamp

# chalice package/deploy need a region even offline; moto and the tests assume us-east-1.
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: .venv dev test check docs bench policies openapi load package clean

.venv: $(STAMP)

# Re-installs whenever a requirements file changes; an existing venv is reused, not recreated.
$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pii-vault needs Python 3.11+, but $(PYTHON) is " + sys.version.split()[0] + "; run e.g. make PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

dev: .venv
	$(PY) -m tools.devstack

test: .venv
	$(PY) -m pytest tests/unit tests/integration tests/e2e

# cfn-lint, checkov, parliament, bandit, pip-audit, ruff, mypy: see tools/checks.sh.
check: .venv .venv-checkov
	tools/checks.sh

# The documentation site (mkdocs.yml) into site/, strictly: a stale generated table (tools/docs.py),
# a broken link or anchor, a page missing from the nav or a missing include fails; so does a
# page or stylesheet that would fetch anything from another host when viewed (offline).
docs: .venv
	$(PY) -m tools.docs --check
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict
	@! grep -rlE 'src="(https?:)?//|url\((https?:)?//' site --include=*.html --include=*.css \
		|| { echo "docs: the pages above load something from another host"; exit 1; }

# Side-by-side benchmark on moto (about 6 minutes at the defaults); not part of `make test`.
# Writes docs/benchmark.json, docs/benchmark-coldstart.json, docs/benchmark.png, docs/workload.json
# (the workload model adds about a minute; skip it with BENCH_ARGS=--skip-workload).
# Quicker: make bench BENCH_ARGS="--records 200 --kms-latency-ms 5"
BENCH_ARGS ?=
# Lookup by email (bench/lookup.py, about 15 minutes at 1,000 and 10,000 people); quicker:
# make bench LOOKUP_ARGS="--people 1000 --naive-lookups 3"
LOOKUP_ARGS ?=
# Rewrap row (bench/rewrap.py, 10,000 records, caches on and off); quicker: REWRAP_ARGS="--records 500"
bench: .venv
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.lookup $(LOOKUP_ARGS)
	$(PY) -m bench.rewrap --out docs/benchmark-rewrap.json $(REWRAP_ARGS)

# Caller policies (policies/callers/*.json, example account): see docs/callers.md.
policies: .venv
	$(PY) -m tools.access

# docs/openapi-{writer,reader,masked}.json, from the routes, chalicelib/api/contract.py and chalicelib/api/schemas/.
openapi: .venv
	$(PY) -m tools.openapi

# Concurrent clients against a fresh local stack, then a table-scan verification.
# e.g. make load LOAD_ARGS="--clients 32 --ops 200"
load: .venv
	$(PY) -m tools.load $(LOAD_ARGS)

# out/base.json (keys, tables, roles, logs, alarms, dashboard) and, per stage, out/<stage>/sam.json +
# deployment.zip: `chalice package` with the merge template infra/ generates, then
# bytecode compiled for the function's runtime added to the zip. See docs/deploy.md.
package: .venv
	$(PY) -m infra package --out out

# checkov lives in its own venv: its exact boto3 pin conflicts with requirements-dev.txt.
.venv-checkov: requirements-checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --disable-pip-version-check -q -r requirements-checkov.txt
	touch .venv-checkov

clean:
	rm -rf out site .dev .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
