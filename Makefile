# One way to set up, test and run: each target installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint format bench crash failover fuzz clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,postgres]'
	touch $(STAMP)

# Three workers: the suite mostly waits (for the pool's clock, Slack's budget, processes),
# so on two cores it takes a third of the time serially (4 min instead of 10).
test: lint $(STAMP)
	$(BIN)/python -m pytest -n 3

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)
	$(BIN)/migrate-bot demo

bench: $(STAMP)
	$(BIN)/python -m pytest tests/bench -q -s -p no:randomly

crash: $(STAMP)
	$(BIN)/python -m tests.crash.trials 20

failover: $(STAMP)
	$(BIN)/python -m tests.crash.failover 20

# 100,000 generated payloads and 1,000 forged/replayed/truncated ones; SEED=… reruns one.
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.campaign 100000 --rejected 1000 $(if $(SEED),--seed $(SEED))

clean:
	rm -rf $(VENV) build *.egg-info
