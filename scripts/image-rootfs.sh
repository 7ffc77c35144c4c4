#!/usr/bin/env bash
# Assembles the container image's whole filesystem from a release binary: the one
# recipe behind both deploy/Dockerfile (its build stage runs this into /rootfs, the
# runtime stage is FROM scratch + that folder) and `make image` (scripts/image.sh,
# buildah building deploy/Dockerfile's runtime stage with this folder as its `build`).
#
# Usage: scripts/image-rootfs.sh BINARY OUTDIR
#
# OUTDIR gets exactly:
#   /usr/local/bin/scrapeguard   BINARY without symbols or debug info (objcopy
#                                --strip-all); the debug info goes to
#                                OUTDIR/../scrapeguard.debug, beside OUTDIR and not in
#                                it, linked by .gnu_debuglink (gdb on a core dump,
#                                addr2line -e scrapeguard.debug on an address)
#   every shared library `ldd BINARY` names and the dynamic loader, at the paths ldd
#   reports, with every symlink on the way recreated as the same symlink (so
#   /lib -> usr/lib on merged-/usr Debian, libssl.so.3 -> ... as the distribution has
#   it) and the files they end at copied unchanged
#   /etc/passwd, /etc/group      one entry: nonroot, uid/gid 65532 (the Deployment's
#                                runAsUser), no home, no login shell
#
# Nothing else: no shell, no package manager, no CA bundle, no /tmp. Why each is
# left out:
#   - /tmp: serve, check-config, filter and hash-password write no file (only the
#     `demo` command makes a temporary folder); the Deployment's root is read-only.
#   - /etc/ssl, openssl.cnf: the gateway trusts only the CA files its web-config
#     names, and OpenSSL runs with its built-in defaults when its configuration file
#     is missing (it looks for /usr/lib/ssl/openssl.cnf once and goes on; checked with
#     strace on serve and check-config when this script was written).
#   - ld.so.cache, nsswitch.conf: the loader finds libraries in its built-in system
#     folders, and glibc 2.34+ has the files and dns NSS modules inside libc.
# Libraries loaded with dlopen are not in ldd's list; the proof in scripts/image.sh
# (check-config and a real scrape inside the image's filesystem) is what catches one.
#
# Idempotent: OUTDIR is removed and made again. Fails when ldd reports a library
# "not found" (a library missing here would be missing in the pod). Prints what went
# in, from which Debian package, and the total size.
set -euo pipefail

prog=${0##*/}
die() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}

(($# == 2)) || {
    echo "usage: $prog BINARY OUTDIR" >&2
    exit 2
}
binary=$1
out=${2%/}

[[ -f $binary && -x $binary ]] || die "$binary: not an executable file"
for tool in ldd objcopy readelf; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (ldd: libc-bin; objcopy, readelf: binutils)"
done

# ------------------------------------------------------------------ what it loads
# The loader the binary asks for (PT_INTERP), and what ldd says it loads. ldd runs
# the loader on the binary: each line is "name => /path (address)", "/path
# (address)" (the loader), "linux-vdso.so.1 (address)" (the kernel's, no file) or
# "name => not found".
interp=$(readelf -l -- "$binary" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]$/\1/p')
if ! ldd_out=$(ldd -- "$binary" 2>&1); then
    # A fully static binary has nothing to copy; anything else is an error.
    grep -qE 'not a dynamic executable|statically linked' <<<"$ldd_out" || die "ldd $binary failed: $ldd_out"
    ldd_out=
fi
if grep -q 'not found' <<<"$ldd_out"; then
    printf '%s\n' "$ldd_out" >&2
    die "ldd: a shared library of $binary is not found on this machine (above); the image would not start"
fi
# No Foundation and no ICU in the process (issue 15: about 12 MiB of resident memory
# and 57 MB of libraries): the release build links the Swift runtime statically, and
# no target imports Foundation. A dependency that brings it back fails here.
if grep -Ei 'libFoundation|FoundationICU|FoundationInternationalization|libswift' <<<"$ldd_out" >&2; then
    die "the binary loads Swift's or Foundation's shared libraries (above): build it with 'make release' (--static-swift-stdlib; SwiftPM does not relink when only flags change: remove the binary first) and without Foundation"
fi
# Linked statically, Foundation would not show in ldd: its module's symbols would.
# ("$s10Foundation" is the mangled prefix of the Foundation module's own symbols;
# FoundationEssentials' are "$s20FoundationEssentials".)
if symbols=$(nm --defined-only -- "$binary" 2>/dev/null) && [[ -n $symbols ]]; then
    if grep -qE ' \$s10Foundation|FoundationInternationalization|_FoundationICU|ucol_open' <<<"$symbols"; then
        die "the binary has Foundation (with ICU) linked in: a dependency imports Foundation; see docs/ARCHITECTURE.md, Configuration"
    fi
fi
libs=()
while read -r first arrow second _; do
    if [[ $arrow == '=>' && $second == /* ]]; then
        libs+=("$second")
    elif [[ $first == /* ]]; then
        libs+=("$first")
    elif [[ $arrow == '=>' ]]; then
        die "ldd: cannot read the line '$first $arrow $second'"
    fi
done <<<"$ldd_out"
if [[ -n $interp ]]; then
    [[ " ${libs[*]} " == *" $interp "* ]] || libs+=("$interp")
fi

# Wipe OUTDIR, but only one that is empty or an earlier rootfs: the argument is a
# path typed by a person, and rm -rf of the wrong one is not undone.
[[ -n $out && $out != / ]] || die "refusing OUTDIR '$2'"
if [[ -e $out ]]; then
    if [[ -n $(ls -A -- "$out") && ! -f $out/usr/local/bin/scrapeguard ]]; then
        die "$out: exists, is not empty and holds no usr/local/bin/scrapeguard: not an earlier rootfs, not removed"
    fi
    rm -rf -- "$out"
fi
umask 022
mkdir -p -- "$out"
out=$(cd -- "$out" && pwd)
debug_file=$(dirname -- "$out")
debug_file=${debug_file%/}/scrapeguard.debug

# ------------------------------------------------------------------ the binary
# Debug info to a file of its own, then a copy without any symbol table, pointing at
# it by name and CRC (gdb and addr2line find it beside the binary or when named).
mkdir -p "$out/usr/local/bin"
objcopy --only-keep-debug -- "$binary" "$debug_file"
chmod 0644 "$debug_file"
objcopy --strip-all --add-gnu-debuglink="$debug_file" -- "$binary" "$out/usr/local/bin/scrapeguard"
chmod 0755 "$out/usr/local/bin/scrapeguard"

# ------------------------------------------------------------------ libraries
# put_path PATH: PATH of this machine into OUTDIR at the same place. Walks it one
# component at a time: a symlink is recreated as the same symlink and the walk goes
# on from its target; a folder is made; the file at the end is copied.
put_path() { # PATH [DEPTH]
    local path=$1 depth=${2:-0} done_part= rest part here target
    ((depth < 40)) || die "$1: too many symlinks"
    rest=${path#/}
    while [[ -n $rest ]]; do
        part=${rest%%/*}
        if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=; fi
        case $part in
        '' | .) continue ;;
        ..)
            # Lexical is right here: done_part holds no symlink, each was followed.
            done_part=${done_part%/*}
            continue
            ;;
        esac
        here=$done_part/$part
        if [[ -L $here ]]; then
            target=$(readlink -- "$here")
            if [[ -L $out$here ]]; then
                [[ $(readlink -- "$out$here") == "$target" ]] || die "$here: two different symlinks at one path"
            else
                [[ ! -e $out$here ]] || die "$here: a symlink here, but the rootfs has a file or folder there"
                mkdir -p -- "$out$done_part"
                ln -s -- "$target" "$out$here"
            fi
            [[ $target == /* ]] || target=$done_part/$target
            put_path "$target${rest:+/$rest}" $((depth + 1))
            return
        elif [[ -d $here ]]; then
            [[ -d $out$here ]] || mkdir -p -- "$out$here"
            done_part=$here
        elif [[ -f $here && -z $rest ]]; then
            [[ -e $out$here ]] || cp --preserve=mode -- "$here" "$out$here"
            return
        else
            die "$path: $here is not a symlink, folder or regular file"
        fi
    done
}

for lib in "${libs[@]+"${libs[@]}"}"; do
    put_path "$lib"
done

# ------------------------------------------------------------------ the user
# The Deployment runs as 65532:65532 (runAsNonRoot checks the numeric uid); the
# entries give the uid a name for tools and logs. /sbin/nologin is only a string
# here: the image has no shell and no such file.
mkdir -p "$out/etc"
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >"$out/etc/passwd"
echo 'nonroot:x:65532:' >"$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group"

# ------------------------------------------------------------------ report
# Which Debian package each library came from, at which version: the image holds no
# package database, so this build log is where a library's version is written down.
echo "$prog: $out"
for lib in "${libs[@]+"${libs[@]}"}"; do
    real=$(readlink -f -- "$lib")
    package=
    if command -v dpkg-query >/dev/null 2>&1; then
        # dpkg records /lib/... or /usr/lib/... as the package shipped it.
        package=$(dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "$real" 2>/dev/null || true)
        package=${package%%:*}
        [[ -z $package ]] || package="$package $(dpkg-query -W -f='${Version}' "$package" 2>/dev/null)"
    fi
    printf '  %9s  %-48s %s\n' "$(stat -c %s -- "$real")" "$lib" "${package:-(no Debian package)}"
done
printf '  %9s  %-48s %s\n' "$(stat -c %s -- "$out/usr/local/bin/scrapeguard")" /usr/local/bin/scrapeguard \
    "stripped; debug info: $debug_file"
bytes=$(find "$out" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
printf '%s: rootfs %d bytes (%.1f MiB) in %d files, %d symlinks\n' "$prog" "$bytes" \
    "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" \
    "$(find "$out" -type f | wc -l)" "$(find "$out" -type l | wc -l)"
