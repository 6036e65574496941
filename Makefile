# metakube: one cargo profile (release) for build and tests, target dir outside the clone so
# CI and later runs reuse the build (a cold build of faiss + rocksdb takes most of the time).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/metakube/target
CARGO ?= cargo
PROFILE := --release
BIN := $(CARGO_TARGET_DIR)/release

.PHONY: setup build demo test lint bench eval models

setup:
	./scripts/setup.sh

build: setup
	$(CARGO) build $(PROFILE) --locked --workspace --bins

# Quick start 1: set up, build, start the daemon, diagnose a bundled example dump.
demo: build
	./scripts/demo.sh

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(PROFILE) --locked --workspace --all-targets -- -D warnings

# Quick start 2: set up, build, lint, run every test.
test: build lint
	$(CARGO) test $(PROFILE) --locked --workspace --no-fail-fast

bench: build
	$(CARGO) bench --locked -p metakube-benches

eval: build
	$(BIN)/kubectl-metakube eval tests/scenarios
	$(BIN)/kubectl-metakube eval ../shared/scenarios

models:
	./models/fetch.sh
