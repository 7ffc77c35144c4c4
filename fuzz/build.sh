#!/usr/bin/env bash
# Builds the MetricsFilter fuzz target: Sources/MetricsFilter/*.swift and
# fuzz/FilterFuzzer.swift compiled as one module into one libFuzzer executable, with
# AddressSanitizer. Output: .build-fuzz/filter-fuzzer (git-ignored).
#
#   fuzz/build.sh              build
#   FUZZ_OPT=-Onone fuzz/build.sh   build without optimization (better stack traces)
#
# Environment: SWIFTC, CLANG (default: from PATH), FUZZ_OPT (default -O),
# FUZZ_NICE (default 19: the build yields the CPU to everything else).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/.build-fuzz"
swiftc="${SWIFTC:-swiftc}"
clang="${CLANG:-clang}"
opt="${FUZZ_OPT:--O}"
nice=(nice -n "${FUZZ_NICE:-19}")

cd "$root"
mkdir -p "$out/obj" "$out/modules/COpenSSLShims"

# C flags and libraries of the system modules, as SwiftPM takes them from pkg-config.
cflags=""
libs="-lssl -lcrypto -lpcre2-8"
if command -v pkg-config >/dev/null 2>&1; then
    cflags="$(pkg-config --cflags openssl libpcre2-8 2>/dev/null || true)"
    libs="$(pkg-config --libs openssl libpcre2-8 2>/dev/null || echo "$libs")"
fi

# COpenSSLShims is a C target: SwiftPM generates its module map; do the same here.
cat >"$out/modules/COpenSSLShims/module.modulemap" <<EOF
module COpenSSLShims {
    umbrella header "$root/Sources/COpenSSLShims/include/COpenSSLShims.h"
    export *
}
EOF

echo "fuzz/build.sh: compiling Sources/COpenSSLShims/shims.c" >&2
# shellcheck disable=SC2086
"${nice[@]}" "$clang" -O1 -g -fsanitize=fuzzer-no-link,address \
    -I Sources/COpenSSLShims/include $cflags \
    -c Sources/COpenSSLShims/shims.c -o "$out/obj/shims.o"

echo "fuzz/build.sh: compiling MetricsFilter + fuzz/FilterFuzzer.swift ($opt)" >&2
xcc=()
for flag in $cflags; do xcc+=(-Xcc "$flag"); done
# One module named MetricsFilter, so the harness needs no import; -parse-as-library
# because libFuzzer provides main(). Run from the output folder: with -g the driver
# leaves MetricsFilter-*.swiftmodule/.swiftdoc/.swiftsourceinfo in the current
# directory.
# shellcheck disable=SC2086
(cd "$out/obj" && "${nice[@]}" "$swiftc" \
    -sanitize=fuzzer,address -parse-as-library \
    -swift-version 6 -module-name MetricsFilter \
    "$opt" -g -wmo \
    -I "$root/Sources/COpenSSL" -I "$root/Sources/CPCRE2" -I "$out/modules/COpenSSLShims" \
    -Xcc -I -Xcc "$root/Sources/COpenSSLShims/include" ${xcc[@]+"${xcc[@]}"} \
    "$root"/Sources/MetricsFilter/*.swift "$root/fuzz/FilterFuzzer.swift" \
    "$out/obj/shims.o" \
    $libs -lcrypt \
    -o "$out/filter-fuzzer") \
    2> >(grep -v "warning: Cannot export local symbol '__asan" >&2)

echo "fuzz/build.sh: built $out/filter-fuzzer" >&2
