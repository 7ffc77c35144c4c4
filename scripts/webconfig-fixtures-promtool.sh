#!/usr/bin/env bash
# Run `promtool check web-config` on every web-config fixture, the way the Swift
# test-suite sees them: copied into a temporary folder next to a certs/ folder made
# by certs/gen-dev-certs.sh --test-extras, with the @@...@@ PEM placeholders
# replaced. Prints one line per fixture: file, accept|reject, promtool's message.
#
# Usage: scripts/webconfig-fixtures-promtool.sh [--check]
#   --check  also compare with the promtool column of expectations.tsv and exit 1
#            on any difference (the column was filled with Debian bookworm's
#            promtool 2.42.0, which bundles exporter-toolkit 0.8.2).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
fixtures=$here/Tests/Fixtures/webconfig
check=0
[[ ${1:-} == --check ]] && check=1

command -v promtool >/dev/null 2>&1 || {
    echo "promtool not found (Debian: apt-get install prometheus)" >&2
    exit 2
}

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
"$here/certs/gen-dev-certs.sh" --test-extras "$tmp/certs" >/dev/null

# substitute FILE: replace a line holding only @@TOKEN@@ with the PEM file, each
# line indented like the token (so it stays inside its YAML block scalar).
substitute() {
    awk -v ca="$tmp/certs/ca.crt" -v crt="$tmp/certs/server.crt" -v key="$tmp/certs/server.key" '
        match($0, /^[ \t]*@@(CA_PEM|SERVER_CRT_PEM|SERVER_KEY_PEM)@@[ \t]*$/) {
            indent = $0; sub(/@@.*/, "", indent)
            tok = $0; gsub(/[ \t@]/, "", tok)
            f = (tok == "CA_PEM") ? ca : (tok == "SERVER_CRT_PEM") ? crt : key
            while ((getline line < f) > 0) print indent line
            close(f); next
        }
        { print }' "$1"
}

declare -A got=()
for src in "$fixtures"/*.yml; do
    name=${src##*/}
    substitute "$src" >"$tmp/$name"
    if msg=$(cd "$tmp" && promtool check web-config "$name" 2>&1); then v=accept; else v=reject; fi
    got[$name]=$v
    printf '%s\t%s\t%s\n' "$name" "$v" "$(printf '%s' "$msg" | tr '\n\t' '  ' | cut -c1-200)"
done

((check)) || exit 0
status=0
while IFS=$'\t' read -r file _verdict _key _reason promtool_col; do
    [[ -z $file || $file == \#* ]] && continue
    if [[ -z ${got[$file]+x} ]]; then
        echo "MISSING fixture for tsv row: $file" >&2
        status=1
    elif [[ ${got[$file]} != "$promtool_col" ]]; then
        echo "MISMATCH $file: promtool says ${got[$file]}, tsv says $promtool_col" >&2
        status=1
    fi
    unset "got[$file]"
done <"$fixtures/expectations.tsv"
for file in "${!got[@]}"; do
    echo "NOT IN TSV: $file" >&2
    status=1
done
((status == 0)) && echo "promtool column matches for all fixtures"
exit "$status"
