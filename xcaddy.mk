# Builds Caddy with tokengate and runs its tests. Use as `make -f xcaddy.mk <target>`:
#   build   bin/caddy, rebuilt only when the sources changed (bin/caddy.hash records what it was built from)
#   build-example  bin/caddy-example: bin/caddy plus examples/apikeygrant, a third-party extension grant
#   run     build, then serve Caddyfile.example (token endpoint on :8080, a protected demo app behind it)
#   test    build, then every test: unit packages with the race detector, tests/ against bin/caddy
#   fuzz    every fuzz target of every package for FUZZTIME each
#   bench   build, then the load benchmark: tokengate as ratios to Caddy's respond/reverse_proxy (BENCHTIME a run)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

CADDY_VERSION := v2.11.9
# xcaddy needs a version beside the local replacement: with a bare `=.` it asks the module proxy for
# github.com/tokengate/tokengate, which is not published. The zero pseudo-version names no release.
ZERO := v0.0.0-00010101000000-000000000000
MODULE := github.com/tokengate/tokengate@$(ZERO)=.
BIN := bin/caddy
# An extension grant of its own module, built in as a third party would build it.
EXAMPLE := github.com/tokengate/tokengate/examples/apikeygrant@$(ZERO)=./examples/apikeygrant
EXAMPLE_BIN := bin/caddy-example

# The whole suite must finish well inside CI's limit; these bound each `go test` run.
UNIT_TIMEOUT ?= 8m
E2E_TIMEOUT ?= 6m
FUZZTIME ?= 60s
BENCHTIME ?= 5s
# Where the bench keeps its state: pebble, bolt, or memory (nothing durable: what a store that cost
# nothing would reach).
BENCHSTORE ?= pebble

# The race detector needs cgo (a C compiler); without one the unit tests still run, unraced.
RACE := $(if $(filter 1,$(shell go env CGO_ENABLED)),-race)

.PHONY: build build-example run test fuzz bench node_deps

# Every package but tests/, whose TestMain builds Caddy and which has no unit tests or fuzz targets.
unit_packages = go list -e ./... | grep -v '/tests$$'

# What bin/caddy is built from: go.mod, go.sum and every other file a build can read (Go sources and
# anything they may //go:embed), but no test, test data, docs or tooling. Sorted, so the hash is stable.
# The Go and Caddy versions join the hash: a new toolchain must rebuild too.
source_hash = { find . \( -path ./.git -o -path ./bin -o -path ./.cache -o -path ./.ci -o -path ./tests \
	-o -name testdata -o -name node_modules \) -prune -o -type f \
	! -name '*_test.go' ! -name '*.md' ! -name 'Caddyfile*' ! -name xcaddy.mk -print0 \
	| LC_ALL=C sort -z | xargs -0 sha256sum; go version; echo $(CADDY_VERSION); } | sha256sum | cut -d' ' -f1

# cached_build builds $(1) with the --with flags $(2), unless $(1).hash says it was built from these
# very sources and flags. flock: two test runs started together build once, and neither runs a
# half-written binary.
define cached_build
	@mkdir -p bin
	@exec 9>bin/.build.lock; flock 9; \
	hash=$$({ $(source_hash); echo '$(2)'; } | sha256sum | cut -d' ' -f1); \
	if [ -x $(1) ] && [ "$$hash" = "$$(cat $(1).hash 2>/dev/null)" ]; then \
		echo "$(1) is up to date"; exit 0; \
	fi; \
	rm -f $(1).hash; \
	go tool xcaddy build $(CADDY_VERSION) $(2) --output $(1); \
	echo "$$hash" > $(1).hash
endef

build:
	$(call cached_build,$(BIN),--with $(MODULE))

build-example:
	$(call cached_build,$(EXAMPLE_BIN),--with $(MODULE) --with $(EXAMPLE))

run: build
	$(BIN) run --config Caddyfile.example --adapter caddyfile

# Both runs always happen, so one failing package does not hide the other's results; the exit status
# is the first failure's. tests/ runs without -race: it drives the prebuilt bin/caddy, which is the
# code under test, and racing the test client itself would only slow it down.
# -count=1: Go's test cache does not see programs outside the module (redis-server, chromium, node),
# so a result cached while one was missing, its tests skipped, would be handed back after it is
# installed. Every run runs every test.
test: build build-example node_deps
	@status=0; \
	go test -count=1 $(RACE) -timeout $(UNIT_TIMEOUT) $$($(unit_packages)) || status=$$?; \
	CADDY_BIN=$(CURDIR)/$(BIN) EXAMPLE_CADDY_BIN=$(CURDIR)/$(EXAMPLE_BIN) go test -count=1 -timeout $(E2E_TIMEOUT) ./tests/... || status=$$?; \
	exit $$status

# The Node.js packages tests/node/package-lock.json pins (openid-client, the MCP conformance suite and
# SDK), installed again whenever the lock file changes, and only where npm exists (the tests say why
# they skip otherwise). npm ci writes node_modules/.package-lock.json, which dates the install.
node_deps:
	@if command -v npm >/dev/null && [ ! tests/node/node_modules/.package-lock.json -nt tests/node/package-lock.json ]; then \
		npm ci --prefix tests/node --no-audit --no-fund; \
	fi

# Fuzz targets are found by name, so a new one joins without editing this file. `go test -fuzz` takes
# one target and one package at a time.
fuzz:
	@for pkg in $$($(unit_packages)); do \
		listed=$$(go test -list '^Fuzz' "$$pkg"); \
		for target in $$(sed -n '/^Fuzz/p' <<<"$$listed"); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done

# Not a test: it prints requests/s and the ratios against their goals in one line.
bench: build
	go run ./bench/loadtest -caddy $(BIN) -duration $(BENCHTIME) -store $(BENCHSTORE)
