# Everything a newcomer needs: `make demo` and `make test` build their own virtual environment from the package registry.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test check bench demo pictures lock pin clean

# The `test` extra includes `local` (moto and the Jira stand-in), so the demo shares this environment.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# checkov pins an older boto3 than the tests use, so it lives in a virtual environment of its own.
TOOLS       := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet checkov==3.3.30
	touch $(TOOLS_STAMP)

# Static checks first (lint with a complexity bound, formatting, types), then every test, a test
# file per worker process, the long files first (tests/conftest.py). One worker more than the machine
# has cores: the terraform applies spend most of their minutes waiting on the provider's consistency
# checks, and the extra worker runs short files meanwhile.
WORKERS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 1)")

test: check $(TOOLS_STAMP)
	CHECKOV=$(TOOLS)/bin/checkov $(BIN)/pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The archives' SHA-256 that Terraform deploys (lambda_code/archives.lock.json): after any change to
# lambda_code/guardduty_responder, layer-requirements.txt or build_archives.py. The layer's wheels come from the package index.
lock:
	$(PYTHON) lambda_code/build_archives.py lock

# The SHA-256 of every pinned wheel of the layer, for both Lambda platforms, asked of the package index; then `make lock`.
pin:
	$(PYTHON) lambda_code/build_archives.py pin

# Containment benchmark on moto with simulated AWS and Jira latency; not part of `make test`.
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_containment.py --json tests/benchmarks/results.json

# The whole flow on an embedded AWS and a local Jira stand-in: no account, no network.
demo: $(STAMP)
	$(BIN)/guardduty-responder demo

# Redraws pictures/*.png. Graphviz is a system package: apt-get install graphviz, brew install graphviz.
pictures: $(STAMP)
	@command -v dot >/dev/null 2>&1 || { echo "make pictures: Graphviz's 'dot' is not on PATH: install graphviz (apt-get install graphviz, brew install graphviz)" >&2; exit 1; }
	$(BIN)/pip install --quiet 'diagrams==0.25.1'
	$(BIN)/python pictures/make_pictures.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .build
