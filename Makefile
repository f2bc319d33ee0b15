# zhucan (助参): the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml setup.py schemas/_flat.c schemas/_civil.h schemas/_avro_in.h schemas/_avro_out.h streams/_speedups.c | cksum | cut -d' ' -f1)

.PHONY: help install demo test test-unit test-integration test-soak lint kafka-up kafka-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

$(STAMP): pyproject.toml setup.py schemas/_flat.c schemas/_civil.h schemas/_avro_in.h schemas/_avro_out.h streams/_speedups.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install zhucan with its test tools (and Java/Maven if missing)
	@deploy/ensure-system.sh kafka

demo: install ## the main job: local Kafka, the worker, sample people of the seed regions, a summary
	$(BIN)/zhucan demo

lint: install ## ruff and mypy
	$(BIN)/ruff check streams schemas connectors tests
	$(BIN)/mypy

TEST_PROCESSES ?= 3

test: install lint ## the whole suite: lint, unit, agent, real-Kafka integration and browser tests (TEST_PROCESSES=3)
	@deploy/ensure-system.sh chromium
	$(BIN)/python -m pytest -p no:cacheprovider -q -n $(TEST_PROCESSES) --dist loadgroup tests

test-unit: install ## tests that need no broker
	$(BIN)/python -m pytest -q tests/unit tests/agents

test-integration: install ## tests on real Kafka (started by the suite unless KAFKA_BOOTSTRAP_SERVERS is set)
	@deploy/ensure-system.sh chromium
	$(BIN)/python -m pytest -q tests/integration

test-soak: install ## a longer kill-and-restart soak on real Kafka (ZHUCAN_SOAK_KILLS, default 100; ZHUCAN_SOAK_EVENTS, 100000)
	ZHUCAN_SOAK_KILLS=$${ZHUCAN_SOAK_KILLS:-100} ZHUCAN_SOAK_EVENTS=$${ZHUCAN_SOAK_EVENTS:-100000} \
		$(BIN)/python -m pytest -q tests/integration/test_restarts.py -k kills

kafka-up: install ## start the embedded local Kafka on 127.0.0.1:9092
	$(BIN)/zhucan kafka up

kafka-down: install ## stop it (data kept; `zhucan kafka down --wipe` removes it)
	$(BIN)/zhucan kafka down

clean: ## remove the virtualenv and caches (not the Kafka jars or data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .zhucan-data *.egg-info
