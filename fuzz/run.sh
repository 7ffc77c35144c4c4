#!/usr/bin/env bash
# Runs the MetricsFilter fuzz target for SECONDS (default 30, the CI run).
#
#   fuzz/run.sh              30 s (CI)
#   fuzz/run.sh 3600         one hour
#   fuzz/run.sh 3600 -max_len=65536 ...   extra arguments go to libFuzzer
#
# Builds .build-fuzz/filter-fuzzer first when it is missing or older than its sources.
# Seeds a fresh temporary corpus from ../shared/corpus/openmetrics/*/metrics and the
# `input:` blocks of Tests/Fixtures/relabel/*.yml, each prefixed with a few control-byte
# pairs (format, policy, chunk plan: see fuzz/FilterFuzzer.swift). Set FUZZ_CORPUS to
# a directory to keep the corpus between runs instead (it is seeded the same way).
#
# Crashing inputs go to fuzz/crashes/ (crash-<sha1>, plus a minimized copy); the script
# then exits non-zero and prints their paths.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-30}"
shift || true
binary="$root/.build-fuzz/filter-fuzzer"
crashes="$root/fuzz/crashes"
nice=(nice -n "${FUZZ_NICE:-19}")
# Swift's own crash backtracer would race libFuzzer's handler (and can hang there):
# let libFuzzer and ASan report crashes.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"

cd "$root"

needs_build=0
if [[ ! -x "$binary" ]]; then
    needs_build=1
elif [[ -n "$(find Sources/MetricsFilter Sources/COpenSSLShims Sources/COpenSSL Sources/CRE2 \
                   fuzz/FilterFuzzer.swift fuzz/build.sh -newer "$binary" -type f 2>/dev/null | head -1)" ]]; then
    needs_build=1
fi
if [[ $needs_build == 1 ]]; then
    bash "$root/fuzz/build.sh"
fi

tmp_input="$(mktemp "${TMPDIR:-/tmp}/scrapeguard-fuzz-input.XXXXXX")"
if [[ -n "${FUZZ_CORPUS:-}" ]]; then
    corpus="$FUZZ_CORPUS"
    mkdir -p "$corpus"
    trap 'rm -f "$tmp_input"' EXIT
else
    corpus="$(mktemp -d "${TMPDIR:-/tmp}/scrapeguard-fuzz-corpus.XXXXXX")"
    trap 'rm -rf "$corpus" "$tmp_input"' EXIT
fi

# Control byte: bit 0 format (1 = OpenMetrics), bits 1-3 policy, bit 4 short lines,
# bit 5 fail_scrape, bit 6 random chunks. Second byte: chunk size - 1 or seed.
seed() {  # seed NAME FILE CONTROL-HEX CHUNK-HEX
    { printf "\\x$3\\x$4"; cat "$2"; } >"$corpus/$1-$3$4"
}
count=0
for file in ../shared/corpus/openmetrics/*/metrics; do
    [[ -f "$file" ]] || continue
    name="om-$(basename "$(dirname "$file")")"
    seed "$name" "$file" 01 ff   # OpenMetrics, identity, chunks of 256
    seed "$name" "$file" 03 06   # OpenMetrics, relabel-mixed, chunks of 7
    seed "$name" "$file" 49 11   # OpenMetrics, pii, random chunks
    seed "$name" "$file" 0f 00   # OpenMetrics, relabel-mixed+pii+limits, chunks of 1
    seed "$name" "$file" 00 0f   # text, identity, chunks of 16
    count=$((count + 5))
done
for file in Tests/Fixtures/relabel/*.yml; do
    [[ -f "$file" ]] || continue
    # The `input: |` block scalar, its two-space indentation removed.
    awk '/^input: *\|/ { inside = 1; next }
         inside && /^  / { print substr($0, 3); next }
         inside && /^$/ { print ""; next }
         inside { exit }' "$file" >"$tmp_input"
    [[ -s "$tmp_input" ]] || continue
    name="relabel-$(basename "$file" .yml)"
    seed "$name" "$tmp_input" 00 ff   # text, identity
    seed "$name" "$tmp_input" 02 04   # text, relabel-mixed, chunks of 5
    seed "$name" "$tmp_input" 44 2a   # text, relabel-edge, random chunks
    seed "$name" "$tmp_input" 1a 02   # text, limits, short lines, chunks of 3
    count=$((count + 4))
done
# Hand-written seeds for what the fuzz policies act on (fuzz/seeds/*.om, *.txt).
for file in fuzz/seeds/*.om; do
    [[ -f "$file" ]] || continue
    name="seed-$(basename "$file")"
    for control in 01 03 49 0d 0f 31 08 88; do seed "$name" "$file" "$control" 05; done
    count=$((count + 8))
done
for file in fuzz/seeds/*.txt; do
    [[ -f "$file" ]] || continue
    name="seed-$(basename "$file")"
    for control in 00 02 44 08 0e 1a 30 80 88; do seed "$name" "$file" "$control" 05; done
    count=$((count + 9))
done
# Protobuf bodies (fuzz/seeds/*.pb: `#P` and the delimited bytes of
# Tests/Support/protobuf_exposition.py sample): every policy for a UTF-8 scraper, then
# escaped names, a 64-byte family bound, random chunks.
for file in fuzz/seeds/*.pb; do
    [[ -f "$file" ]] || continue
    name="seed-$(basename "$file")"
    for control in 00 02 04 06 08 0a 0c 0e 01 11 4f 8f; do seed "$name" "$file" "$control" 05; done
    count=$((count + 12))
done
# Inputs that once crashed (fuzz/crashes/), as they are: regression cases.
for file in fuzz/crashes/*; do
    [[ -f "$file" ]] || continue
    cp "$file" "$corpus/regression-$(basename "$file")"
    count=$((count + 1))
done
echo "fuzz/run.sh: $count seeds in $corpus; running ${seconds}s" >&2

mkdir -p "$crashes"
before="$(ls -1 "$crashes" | sort)"

# -timeout: one input (three filter passes) taking longer than this is a hang.
status=0
"${nice[@]}" "$binary" "$corpus" \
    -max_total_time="$seconds" \
    -rss_limit_mb=2048 \
    -timeout=30 \
    -dict="$root/fuzz/exposition.dict" \
    -artifact_prefix="$crashes/" \
    -print_final_stats=1 \
    "$@" || status=$?

if [[ $status -ne 0 ]]; then
    echo >&2
    echo "fuzz/run.sh: the fuzzer failed (exit status $status)" >&2
    new="$(comm -13 <(echo "$before") <(ls -1 "$crashes" | sort) | grep -E '^(crash|timeout|oom|leak)-' || true)"
    for artifact in $new; do
        path="$crashes/$artifact"
        # A regression input that still crashes: no second copy.
        for old in $before; do
            if cmp -s "$path" "$crashes/$old"; then
                rm -f "$path"
                echo "fuzz/run.sh: still crashes: $crashes/$old" >&2
                echo "fuzz/run.sh: reproduce with: SWIFT_BACKTRACE=enable=no $binary $crashes/$old" >&2
                continue 2
            fi
        done
        minimized="$crashes/minimized-$artifact"
        echo "fuzz/run.sh: crashing input: $path" >&2
        echo "fuzz/run.sh: minimizing it (up to 60 s)..." >&2
        "${nice[@]}" "$binary" "$path" -minimize_crash=1 -max_total_time=60 \
            -exact_artifact_path="$minimized" >"$minimized.log" 2>&1 || true
        if [[ -f "$minimized" ]]; then
            echo "fuzz/run.sh: minimized:      $minimized" >&2
        fi
        rm -f "$minimized.log"
        echo "fuzz/run.sh: reproduce with: SWIFT_BACKTRACE=enable=no $binary $path" >&2
    done
    exit 1
fi
echo "fuzz/run.sh: no crash in ${seconds}s" >&2
