# The two commands a newcomer needs: `make run` (the daemon on the embedded defaults) and
# `make test` (the whole suite, including PostgreSQL). Both set up everything they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint bench tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# Byte-compile once: with PYTHONDONTWRITEBYTECODE set, every command would recompile.
	$(BIN)/python -m compileall -q daemon $(VENV)/lib >/dev/null || true
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/rosterdrop serve --demo

# The clients and servers the tests drive for real: PostgreSQL 15, OpenSSH's sftp, curl.
tools:
	@./.ci/tools

lint: $(STAMP)
	$(BIN)/ruff check daemon tests bench
	$(BIN)/ruff format --check daemon
	$(BIN)/mypy daemon

# Every test runs: one that would skip for a missing tool (PostgreSQL, systemd's) fails.
test: $(STAMP) tools lint
	ROSTERDROP_REQUIRE_REAL_TOOLS=1 $(BIN)/pytest -n 2

bench: $(STAMP) tools
	$(BIN)/python bench/roster_import.py
	$(BIN)/python bench/sftp_throughput.py
	$(BIN)/python bench/serve_latency.py
	$(BIN)/python bench/web_upload.py
	$(BIN)/python bench/web_pages.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
