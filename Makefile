# hls-swarm lab. Targets wrap one-liners; the logic lives in the Rust crates.
# `make` alone lists the targets.

CARGO ?= cargo
NIX ?= nix --extra-experimental-features 'nix-command flakes'
# CI sets CI=true; never write snapshots there.
export INSTA_UPDATE ?= no

.DEFAULT_GOAL := help
.PHONY: help deps deps-test build release demo test observe test-loaded soak check fmt clippy cycles unit fuzz run dev test-origin bench bench-origin bench-swarm bench-image bench-quick nix-check nix-flake-check clean
.PHONY: deps-containers container-bins container-conf container-build container-run container-stop test-containers
.PHONY: deps-vm lab-bins microvm-check-kvm microvm-build microvm-start microvm-start-tap microvm-stop \
	microvm-status microvm-console network-setup network-teardown network-check \
	load-test-50 load-test-100 load-test-300 test-lab bench-microvm

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## install ffmpeg, nginx and the Prometheus exporters if missing (apt; root or sudo)
	scripts/install-deps

deps-test: ## deps plus what the test suite uses (promtool, chromium and hls.js, tmux, zsh, fish, nix-bin; qemu, kernel, busybox for the VM image tests)
	scripts/install-deps --test --vm
	scripts/fetch-hlsjs >/dev/null

build: ## debug build of the workspace
	$(CARGO) build --workspace

release: ## release binaries in target/release
	$(CARGO) build --workspace --release --bins

demo: deps release ## set up, start the origin, run 20 viewers for 30 s, print the summary, stop
	scripts/demo

test: deps-test check ## the whole suite: fmt, clippy -D warnings, unit and integration tests; a summary of what did not run and why at the end
	@mkdir -p $(TARGET_DIR)
	bash -o pipefail -c '$(CARGO) test --workspace --all-targets --no-fail-fast 2>&1 | tee $(TARGET_DIR)/test.log'; \
	status=$$?; $(CARGO) run -q -p testkit --bin test-summary -- $(TARGET_DIR)/test.log; exit $$status

test-loaded: deps-test ## make test with a CPU hog on one core alongside (stress-ng --cpu 1): the suite passes on a busy machine too
	stress-ng --cpu 1 --timeout 90m --quiet & hog=$$!; \
	$(MAKE) test; status=$$?; kill $$hog; wait $$hog; exit $$status

check: fmt clippy cycles ## formatting, lints and import cycles only

fmt: ## rustfmt check
	$(CARGO) fmt --all -- --check

clippy: ## clippy with warnings as errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

CRATES = swarm origin network microvm containers testlab procgroup kit testkit

cycles: ## no two files of a crate import each other (testkit's import-cycles)
	$(CARGO) run -q -p testkit --bin import-cycles -- $(CRATES)

unit: ## unit tests only (no ffmpeg or nginx needed)
	$(CARGO) test --workspace --lib

FUZZ_CASES ?= 100000

fuzz: ## the parsers' property tests run long: 100000 cases each (FUZZ_CASES=N), ~20 min; playlists, Prometheus text, chunked framing, FFmpeg log
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test -p hls-kit -p hls-swarm --lib props

run: release ## run the swarm: make run ARGS='--clients 10 http://host:17080/stream.m3u8'
	target/release/hls-swarm $(ARGS)

dev: ## a shell with the toolchain and runtime tools: `nix develop` when Nix is installed, else says what to do
	@if command -v nix >/dev/null 2>&1; then exec $(NIX) develop; \
	else echo "dev: Nix is not installed. Without it: make deps (apt packages) and cargo from rustup are all the lab needs."; fi

observe: release ## Prometheus scraping the swarm (:17091) and the origin's exporters (:9100, :9113), Grafana with the lab's dashboards if installed; Ctrl+C stops: make observe ARGS='--swarm 10.0.0.5:17091'
	target/release/hls-lab observe $(ARGS)

test-origin: release ## run the test origin in the foreground: make test-origin PROFILE=low-latency
	target/release/hls-origin serve --profile $(or $(PROFILE),default)

bench: bench-origin bench-swarm bench-image ## every benchmark (each prints a table)

bench-origin: deps ## the origin's CPU per profile, live encode vs replay (and the host's RAPL energy where it has RAPL); timing figures against their goals (hold, resume, pause, restart) (prints tables)
	$(CARGO) bench -p hls-origin --bench cpu
	$(CARGO) bench -p hls-origin --bench timing

bench-swarm: deps ## swarm cost per viewer: relay, log, bare ffmpeg at 50/100/200 viewers, goals (~15 min; JSON in target/bench); timing figures against their goals (~2 min); micro benches; the engines' traffic side by side (parity, ~2.5 min)
	$(CARGO) bench -p hls-swarm --bench micro
	$(CARGO) bench -p hls-swarm --bench timing
	$(CARGO) bench -p hls-swarm --bench swarm
	$(CARGO) bench -p hls-swarm --bench parity

soak: deps ## 100 FFmpeg viewers, then 2,000 native ones, 30 minutes each: RSS, open fds, threads and the stats tick's lag every 10 s; fails on > 5 % growth after 5 minutes (prints the curves)
	$(CARGO) bench -p hls-swarm --bench soak
	$(CARGO) bench -p hls-swarm --bench soak -- --engine native --viewers 2000

bench-quick: ## smoke run of the swarm benches: 20 viewers, short windows, micro benches very short (~2 min)
	$(CARGO) bench -p hls-swarm --bench micro -- --warm-up-time 0.2 --measurement-time 0.5 --sample-size 10
	$(CARGO) bench -p hls-swarm --bench swarm -- --quick

# --- The origin MicroVM and its network (hls-lab; see docs/microvm.md) ---------------------
# NETNS=NAME puts the bridge and TAP in a network namespace (qemu and the load test run inside);
# SOURCE=replay serves a pre-encoded loop (under TCG the live encoder takes the guest's CPU);
# DURATION=5m sets the load tests' length.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
HLS_LAB := $(TARGET_DIR)/release/hls-lab
NETNS_FLAG = $(if $(NETNS),--netns $(NETNS))
SOURCE_FLAG = $(if $(SOURCE),--source $(SOURCE))

deps-vm: ## deps plus qemu, a kernel with modules, busybox-static, nftables (apt; root or sudo)
	scripts/install-deps --vm

lab-bins:
	$(CARGO) build --release -p microvm -p hls-origin -p hls-swarm --bins

microvm-check-kvm: deps-vm lab-bins ## KVM or TCG for the VM, and why (CPU flags, /dev/kvm, a boot probe)
	$(HLS_LAB) microvm check-kvm

microvm-build: deps-vm lab-bins ## build or reuse the VM image (kernel + initramfs from this host's binaries)
	$(HLS_LAB) microvm build

microvm-start: deps-vm lab-bins ## start the origin VM, ports 17080/9100/9113 forwarded on 127.0.0.1
	$(HLS_LAB) microvm start --net user $(SOURCE_FLAG)

microvm-start-tap: network-setup ## start the origin VM on hlstap0 at 10.177.0.10 (root; NETNS=NAME)
	$(HLS_LAB) microvm start --net tap $(NETNS_FLAG) $(SOURCE_FLAG)

microvm-stop: lab-bins ## power the VM off (ACPI via QMP), kill it after a grace period
	$(HLS_LAB) microvm stop

microvm-status: lab-bins ## is the VM running and serving its playlist
	$(HLS_LAB) microvm status

microvm-console: lab-bins ## follow the VM's serial console log (read-only)
	$(HLS_LAB) microvm console

network-setup: deps-vm lab-bins ## create hlsbr0 (10.177.0.1/24) and hlstap0 (root; NETNS=NAME)
	$(HLS_LAB) network setup $(NETNS_FLAG)

network-teardown: lab-bins ## remove hlstap0 and hlsbr0 and what setup changed (root; NETNS=NAME)
	$(HLS_LAB) network teardown $(NETNS_FLAG)

network-check: lab-bins ## ✓/✗ lines: bridge, TAP, vhost-net, the VM's ports (NETNS=NAME)
	$(HLS_LAB) network check $(NETNS_FLAG)

load-test-50: lab-bins ## 50 viewers against whichever origin is up (TAP VM, user-net VM, local)
	$(HLS_LAB) load-test --clients 50 $(if $(DURATION),--duration $(DURATION))

load-test-100: lab-bins ## 100 viewers, as load-test-50
	$(HLS_LAB) load-test --clients 100 $(if $(DURATION),--duration $(DURATION))

load-test-300: lab-bins ## 300 viewers, as load-test-50
	$(HLS_LAB) load-test --clients 300 $(if $(DURATION),--duration $(DURATION))

test-lab: deps-vm ## slow tier: boots the VM (user net; TAP in a netns as root) and loads it with hls-swarm; testlab's slow scenarios
	$(CARGO) build -p hls-origin -p hls-swarm --bins
	$(CARGO) test -p microvm -- --include-ignored
	$(CARGO) test -p testlab -- --ignored

bench-image: deps-vm ## the VM image's build time, fresh and cached, against its goal (prints a table)
	$(CARGO) build --release -p hls-origin --bins
	$(CARGO) bench -p microvm --bench image

bench-microvm: deps-vm ## boot-to-playlist seconds: user vs TAP, vmlinux vs bzImage (prints a table; ~3 min)
	$(CARGO) build --release -p hls-origin --bins
	$(CARGO) bench -p microvm --bench boot

# --- Container images without Nix (hls-containers; see docs/containers.md) -----------------
# Podman reads a private containers.conf (runc, ulimits within this host's hard limits) through
# CONTAINERS_CONF; set CONTAINERS_CONF yourself to use another.
CONTAINERS_DIR := $(TARGET_DIR)/containers
HLS_CONTAINERS := $(TARGET_DIR)/release/hls-containers
CONTAINERS_CONF ?= $(abspath $(CONTAINERS_DIR))/containers.conf

deps-containers: ## deps plus podman, runc and curl (apt; root or sudo)
	scripts/install-deps --containers

container-bins:
	$(CARGO) build --release -p containers -p hls-origin -p hls-swarm --bins

container-conf: container-bins
	$(HLS_CONTAINERS) podman-conf $(abspath $(CONTAINERS_DIR))/containers.conf

container-build: deps-containers container-conf ## build hls-swarm-client and hls-test-origin into target/containers/*.tar and podman load them
	CONTAINERS_CONF=$(CONTAINERS_CONF) $(HLS_CONTAINERS) build --out $(CONTAINERS_DIR) --load

container-run: container-conf ## start the origin container (ports 17080/9100/9113 on 127.0.0.1), wait until healthy; PROFILE=…
	CONTAINERS_CONF=$(CONTAINERS_CONF) $(HLS_CONTAINERS) run-origin --profile $(or $(PROFILE),default) $(SOURCE_FLAG)

container-stop: container-bins ## stop and remove the origin container
	CONTAINERS_CONF=$(CONTAINERS_CONF) $(HLS_CONTAINERS) stop-origin

test-containers: deps-containers ## the image tests: archives from this host's binaries; podman acceptance run (root)
	$(CARGO) build -p hls-origin -p hls-swarm --bins
	$(CARGO) test -p containers

nix-check: ## offline flake checks: parse, format, modules under the real lib.evalModules, pins, Rust-Nix cross-checks (part of `make test`)
	$(CARGO) build -p hls-origin -p hls-swarm --bins
	$(CARGO) test -p testlab --test nix_flake

nix-flake-check: ## full `nix flake check` (needs Nix with network; builds everything, VM test on KVM)
	$(NIX) flake check

clean: ## remove build output
	$(CARGO) clean
