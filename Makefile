# Scrapeguard: `make demo` runs the main job, `make test` runs every test. Both set
# up what they need on a fresh machine (idempotently) first.

SWIFT ?= swift

.PHONY: all build release demo test test-deps test-swift test-deploy test-e2e test-fuzz bench clean

all: build

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

deps:
	@bash scripts/install-deps.sh build

# Dev certificates, a demo app, the gateway in front of it, one real mTLS scrape.
demo: build
	$(SWIFT) run scrapeguard demo

test-deps:
	@bash scripts/install-deps.sh test

test: test-deps test-swift test-deploy test-e2e test-fuzz

# The in-memory suites in parallel; then the integration suites one at a time: they
# run real servers and clients against each other with timeouts, and on two cores a
# test that opens 500 TLS connections starves the rest.
test-swift:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --parallel --filter ScrapeguardUnitTests
	$(SWIFT) test --skip-build --no-parallel --filter ScrapeguardIntegrationTests

test-deploy:
	@if [ -x deploy/test.sh ]; then SCRAPEGUARD_BIN="$$($(SWIFT) build --show-bin-path)/scrapeguard" bash deploy/test.sh; fi

# End to end with a real Prometheus (Debian's prometheus): mTLS + basic auth scrapes,
# the shipped policy (PII, cardinality cap), deploy/'s recording rules, drain on SIGTERM;
# then the protobuf exposition into two Prometheus servers, native histograms on and
# off; then relabeling against Prometheus's own on 300 generated rule lists (fixed seed).
test-e2e: test-deps
	SCRAPEGUARD_BIN="$$($(SWIFT) build --show-bin-path)/scrapeguard" bash e2e/prometheus.sh
	SCRAPEGUARD_BIN="$$($(SWIFT) build --show-bin-path)/scrapeguard" bash e2e/native_histograms.sh
	SCRAPEGUARD_BIN="$$($(SWIFT) build --show-bin-path)/scrapeguard" .venv-test/bin/python e2e/relabel_differential.py --cases 300 --seed 1

# The short fuzz run (30 s) over the scanner and the filter; fuzz/README.md has the long one.
test-fuzz:
	bash fuzz/run.sh 30 -seed=1

# The filter's throughput and allocations (ordo-one/benchmark), and the gateway's CPU
# per scrape and peak RSS, and the gateway side by side with nginx: docs/PERFORMANCE.md
# says what they measured.
bench: release
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark
	bash bench/resources.sh
	bash bench/compare.sh

clean:
	rm -rf .build .build-fuzz .venv-test Benchmarks/.build
