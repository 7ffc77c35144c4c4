# Scrapeguard: `make demo` runs the main job, `make test` runs every test. Both set
# up what they need on a fresh machine (idempotently) first.

SWIFT ?= swift

.PHONY: all build release demo test test-deps test-swift test-deploy test-e2e test-fuzz test-image bench image clean test-tsan

all: build

build: deps
	$(SWIFT) build

# The gateway alone, with the Swift runtime linked in (no Foundation, no ICU; system
# OpenSSL, RE2, libyaml and zlib stay shared, from Debian): what the image carries.
# --no-export-dynamic undoes the static runtime's -export-dynamic: nothing loads
# symbols from the executable, and its dynamic symbol table was 1.6 MB of the file
# and 2.3 MiB of resident memory. (SwiftPM does not relink when only linker flags
# change: remove the binary after changing them.)
release: deps
	$(SWIFT) build -c release --static-swift-stdlib --product scrapeguard -Xlinker --no-export-dynamic

deps:
	@bash scripts/install-deps.sh build

# Dev certificates, a demo app, the gateway in front of it, one real mTLS scrape.
demo: build
	$(SWIFT) run scrapeguard demo

test-deps:
	@bash scripts/install-deps.sh test

test: test-deps test-swift test-tsan test-deploy test-e2e test-fuzz test-image

# The series memo's sharing under ThreadSanitizer: scrapes that share a memo read it
# on threads at once and must write nothing to it (a build of its own, about 70 s).
test-tsan:
	$(SWIFT) build --build-tests --sanitize=thread --build-path .build-tsan
	$(SWIFT) test --skip-build --sanitize=thread --build-path .build-tsan --filter SeriesMemoTests

# The image built and proven (see `image`), its size printed beside the goal.
test-image: image

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

# The container image without a Docker engine: the runtime filesystem from the release
# binary (scripts/image-rootfs.sh), buildah with deploy/Dockerfile's runtime stage fed
# that folder, then the image proven from its own filesystem, read-only
# and as uid 65532: check-config on deploy/'s configs and one real mTLS scrape.
# Prints the image's digest and size. Needs root (buildah, mount, chroot): sudo
# when make is not run as root, as scripts/install-deps.sh does for apt.
image: release
	$(if $(filter 0,$(shell id -u)),,sudo) bash scripts/image.sh "$$($(SWIFT) build -c release --show-bin-path)/scrapeguard"

clean:
	rm -rf .build .build-fuzz .build-image .build-tsan .venv-test Benchmarks/.build
