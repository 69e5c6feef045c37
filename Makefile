# Two commands: `make run` starts the dashboard, `make test` runs the whole suite.
# Each makes .venv when it is missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bytecode clean screenshots bench soak real-servers

$(BIN)/svcviz: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# svcviz's own modules compiled, written even where PYTHONDONTWRITEBYTECODE is set (as in
# many container images, and on this project's CI machines): otherwise the dashboard, and
# each server and command a test starts, compiles every module again at each start (~250 ms
# of the dashboard's first frame here). Only what changed is compiled again.
bytecode: $(BIN)/svcviz
	$(BIN)/python -m compileall -q src

run: bytecode
	$(BIN)/svcviz $(ARGS)

test: lint bytecode
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The real servers the architecture tests name (tests/test_real_servers.py): installed
# from the distribution (as root), never started as system services; each test runs its
# own on a free loopback port with a temp config and data dir.
real-servers: $(BIN)/svcviz
	apt-get install -y -q nginx redis-server apache2 postgresql || \
		(apt-get update -q && apt-get install -y -q nginx redis-server apache2 postgresql)
	$(BIN)/python -m pytest tests/test_real_servers.py $(PYTEST_ARGS)

lint: $(BIN)/svcviz
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

screenshots: $(BIN)/svcviz
	$(BIN)/python screenshots/make_screenshots.py

bench: bytecode
	$(BIN)/python benchmarks/observe.py
	$(BIN)/python benchmarks/blast.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/record.py
	$(BIN)/python benchmarks/picture.py

soak: $(BIN)/svcviz
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
