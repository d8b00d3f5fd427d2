# `make run` starts the whole system; `make test` runs every test. Both install what is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PYTHONPATH := $(CURDIR)

.PHONY: install run test test-fast bench clean

install: $(VENV)/.installed
	@scripts/install-system.sh

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

run: install
	$(BIN)/python -m scripts.run

test: install
	@scripts/install-system.sh --browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not faults and not browser" $(PYTEST_ARGS)

bench: install
	@scripts/install-system.sh --bench
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .data .pytest_cache
