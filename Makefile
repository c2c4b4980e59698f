# pii-vault developer commands. `make dev` runs the local stack, `make test` all test tiers.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements.stamp

# chalice package/deploy need a region even offline; moto and the tests assume us-east-1.
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: .venv dev test check docs bench policies openapi load package rehearse clean

.venv: $(STAMP)

# Re-installs whenever a requirements file changes; an existing venv is reused, not recreated.
$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pii-vault needs Python 3.11+, but $(PYTHON) is " + sys.version.split()[0] + "; run e.g. make PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

dev: .venv
	$(PY) -m tools.devstack

# Tests run on every core (pytest-xdist), a test module per worker at a time (--dist loadfile:
# a module's fixtures, e.g. the `chalice package` run of test_package.py, stay on one worker);
# the e2e tier is collected first, so its workers start on it while the others take the rest.
# One process: make test TEST_WORKERS=0
TEST_WORKERS ?= auto
test: .venv
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile tests/e2e tests/unit tests/integration

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

# Benchmarks on moto; not part of `make test`. BENCH_SIZE=quick (the default) stays within 10
# minutes on a 2-core machine; BENCH_SIZE=full runs the sizes the full-size figures of docs/performance.md
# come from (far longer: 10,000-people lookups, a 10,000-record rewrap); bench/sizes.py says what each
# size runs. In order:
# - bench.run: the approaches side by side, one operation of each kind metered, the cold start of
#   every function of every stage (packages like `make package`), the workload model; writes
#   benchmark.json, .png, benchmark-operations.json, benchmark-coldstart.json, workload.json
#   (BENCH_ARGS="--skip-workload --skip-cold-start --records 200" and so on);
# - bench.lookup: lookup by email against query-and-decrypt (LOOKUP_ARGS="--people 1000 --naive-lookups 3");
# - bench.rewrap: the rewrap row, caches on and off (REWRAP_ARGS="--records 500");
# - bench.cost: the all-in cost table from the figures above: cost.md, cost.json, cost.png.
# Everything is written to BENCH_OUT (default docs; e.g. BENCH_OUT=/tmp/bench to keep docs/ as it is).
BENCH_SIZE ?= quick
BENCH_OUT ?= docs
BENCH_ARGS ?=
LOOKUP_ARGS ?=
REWRAP_ARGS ?=
bench: .venv
	$(PY) -m bench.run --size $(BENCH_SIZE) --out $(BENCH_OUT) $(BENCH_ARGS)
	$(PY) -m bench.lookup --size $(BENCH_SIZE) --out $(BENCH_OUT)/benchmark-lookup.json $(LOOKUP_ARGS)
	$(PY) -m bench.rewrap --size $(BENCH_SIZE) --out $(BENCH_OUT)/benchmark-rewrap.json $(REWRAP_ARGS)
	$(PY) -m bench.cost --dir $(BENCH_OUT)

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

# Both deploy paths of every stage on one base stack, against a local moto, then torn down
# (tools/rehearse.py; docs/deploy.md "Offline rehearsal"). A few minutes; not part of `make test`.
rehearse: .venv
	$(PY) -m tools.rehearse

# checkov lives in its own venv: its exact boto3 pin conflicts with requirements-dev.txt.
.venv-checkov: requirements-checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --disable-pip-version-check -q -r requirements-checkov.txt
	touch .venv-checkov

clean:
	rm -rf out site .dev .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
