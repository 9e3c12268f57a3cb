# hls-swarm lab. Targets wrap one-liners; the logic lives in the Rust crates.
# `make` alone lists the targets.

CARGO ?= cargo
NIX ?= nix --extra-experimental-features 'nix-command flakes'
# CI sets CI=true; never write snapshots there.
export INSTA_UPDATE ?= no

.DEFAULT_GOAL := help
.PHONY: help deps deps-test build release demo test check fmt clippy unit run test-origin bench bench-origin bench-swarm nix-check nix-flake-check clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

deps: ## install ffmpeg, nginx and the Prometheus exporters if missing (apt; root or sudo)
	scripts/install-deps

deps-test: ## deps plus what the test suite uses (promtool, chromium, tmux)
	scripts/install-deps --test

build: ## debug build of the workspace
	$(CARGO) build --workspace

release: ## release binaries in target/release
	$(CARGO) build --workspace --release --bins

demo: deps release ## set up, start the origin, run 20 viewers for 30 s, print the summary, stop
	scripts/demo

test: deps-test check ## the whole suite: fmt, clippy -D warnings, unit and integration tests
	$(CARGO) test --workspace --all-targets

check: fmt clippy ## formatting and lints only

fmt: ## rustfmt check
	$(CARGO) fmt --all -- --check

clippy: ## clippy with warnings as errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: ## unit tests only (no ffmpeg or nginx needed)
	$(CARGO) test --workspace --lib

run: release ## run the swarm: make run ARGS='--clients 10 http://host:17080/stream.m3u8'
	target/release/hls-swarm $(ARGS)

test-origin: release ## run the test origin in the foreground: make test-origin PROFILE=low-latency
	target/release/hls-origin serve --profile $(or $(PROFILE),default)

bench: bench-origin bench-swarm ## every benchmark (each prints a table)

bench-origin: ## the origin's CPU per profile, live encode vs replay (prints a table)
	$(CARGO) bench -p hls-origin --bench cpu

bench-swarm: ## what measuring costs: swarm CPU and memory, relay vs log, 50 and 100 viewers (prints a table)
	$(CARGO) bench -p hls-swarm --bench relay

nix-check: ## offline flake checks: every .nix parses, nixpkgs-fmt, output names (part of `make test`)
	$(CARGO) test -p testlab --test nix_flake

nix-flake-check: ## full `nix flake check` (needs Nix with network; builds everything, VM test on KVM)
	$(NIX) flake check

clean: ## remove build output
	$(CARGO) clean
