#!/usr/bin/env bash
# Builds the MetricsFilter fuzz target: Sources/MetricsFilter/**/*.swift and
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
mkdir -p "$out/obj" "$out/modules/COpenSSLShims" "$out/modules/CRE2"

# C flags and libraries of the system modules, as SwiftPM takes them from pkg-config.
cflags=""
libs="-lssl -lcrypto -lre2"
if command -v pkg-config >/dev/null 2>&1; then
    cflags="$(pkg-config --cflags openssl re2 2>/dev/null || true)"
    libs="$(pkg-config --libs openssl re2 2>/dev/null || echo "$libs")"
fi
# swiftc takes no -pthread (re2.pc asks for it; glibc's libc has the threads anyway).
libs="${libs//-pthread/}"

# COpenSSLShims is a C target: SwiftPM generates its module map; do the same here.
cat >"$out/modules/COpenSSLShims/module.modulemap" <<EOF
module COpenSSLShims {
    umbrella header "$root/Sources/COpenSSLShims/include/COpenSSLShims.h"
    export *
}
EOF

cat >"$out/modules/CRE2/module.modulemap" <<EOF
module CRE2 {
    umbrella header "$root/Sources/CRE2/include/scrapeguard_re2.h"
    export *
}
EOF

echo "fuzz/build.sh: compiling Sources/COpenSSLShims/*.c and Sources/CRE2" >&2
shim_objects=()
for source in Sources/COpenSSLShims/*.c; do
    object=$out/obj/$(basename "$source" .c).o
    # shellcheck disable=SC2086
    "${nice[@]}" "$clang" -O1 -g -fsanitize=fuzzer-no-link,address \
        -I Sources/COpenSSLShims/include $cflags \
        -c "$source" -o "$object"
    shim_objects+=("$object")
done
# shellcheck disable=SC2086
"${nice[@]}" "${clang}++" -O1 -g -std=c++17 -fsanitize=fuzzer-no-link,address \
    -I Sources/CRE2/include $cflags \
    -c Sources/CRE2/scrapeguard_re2.cc -o "$out/obj/scrapeguard_re2.o"

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
    -I "$root/Sources/COpenSSL" -I "$out/modules/COpenSSLShims" -I "$out/modules/CRE2" \
    -Xcc -I -Xcc "$root/Sources/COpenSSLShims/include" ${xcc[@]+"${xcc[@]}"} \
    $(find "$root/Sources/MetricsFilter" -name '*.swift' | sort) "$root/fuzz/FilterFuzzer.swift" \
    "${shim_objects[@]}" "$out/obj/scrapeguard_re2.o" \
    $libs -lcrypt -lstdc++ \
    -o "$out/filter-fuzzer") \
    2> >(grep -v "warning: Cannot export local symbol '__asan" >&2)

echo "fuzz/build.sh: built $out/filter-fuzzer" >&2
