#!/usr/bin/env bash
# Builds Scrapeguard's container image without a Docker engine, and proves from the
# image's own filesystem that it starts and serves. `make image` runs it after the
# release build; on its own:
#
#   scripts/image.sh .build/release/scrapeguard
#
# Steps, each failing the script with what went wrong:
#   1. buildah from Debian, if missing (scripts/install-deps.sh image)
#   2. the runtime filesystem: scripts/image-rootfs.sh BINARY .build-image/rootfs
#      (the debug info lands in .build-image/scrapeguard.debug)
#   3. buildah build of deploy/Dockerfile's runtime stage, its `build` stage given as
#      that folder (--build-context): the same recipe Docker builds, without
#      compiling in a container; prints the image's ID, digest and uncompressed
#      size against the 25 MiB goal
#   4. the proof, from the built image: `buildah from` + `buildah mount` give its
#      filesystem, bind-mounted read-only; with /proc and the Deployment's three
#      volumes (web-config, config, TLS: deploy/'s own files and dev certificates)
#      mounted as a container runtime would, and as uid/gid 65532:
#        - `scrapeguard check-config` on deploy/base's web-config.yml and
#          scrapeguard.yml, and on the dev-certs overlay's web-config.yml
#        - the image's ENTRYPOINT and CMD (`serve`, plus listen addresses and the
#          upstream URL for this machine) in front of a stand-in app on loopback,
#          answering one real scrape from curl with mutual TLS and basic auth: HTTP
#          200 and the stand-in's metric with its e-mail label redacted by deploy/'s
#          policy; then SIGTERM and exit status 0
#      A library missing from the image, a wrong path in CMD or a file the process
#      needs and the image lacks fails here, not in a pod.
#
# Why chroot and not `podman run`: this project's build machines refuse podman's
# containers (setrlimit in the sandbox). chroot with --userspec runs the image's
# binary with nothing but the image's files, as the image's user, without
# capabilities. What it does not give is the rest of a container: its own network,
# PID and mount namespaces, /dev and /sys, seccomp, cgroup limits. The proof needs
# none of them (the scrape goes over the host's loopback), and without /dev and
# /sys it is stricter than a pod.
#
# Needs root: buildah's vfs storage, mount and chroot. Everything it starts or
# mounts (the working container, bind mounts, /proc, the gateway, the stand-in app)
# is removed on exit, also on failure. Leaves the image in buildah's vfs storage
# (`buildah --storage-driver vfs images`) and .build-image/.
#
# Environment:
#   IMAGE              the tag (default localhost/scrapeguard:dev)
#   SOURCE_DATE_EPOCH  the image's creation time and its files' mtimes (default: the
#                      HEAD commit's time), so the same binary gives the same digest
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-localhost/scrapeguard:dev}
goal_mib=25
out=$root/.build-image

die() {
    printf '%s: FAILED: %s\n' "$prog" "$*" >&2
    exit 1
}
say() { printf '%s: %s\n' "$prog" "$*"; }

(($# == 1)) || {
    echo "usage: $prog BINARY   (e.g. $prog .build/release/scrapeguard)" >&2
    exit 2
}
binary=$1
[[ -f $binary && -x $binary ]] || die "$binary: no such executable (make release first)"
((EUID == 0)) || die "needs root (buildah's vfs storage, mount, chroot); run it as root or with sudo"

# ------------------------------------------------------------------ 1. tools
bash "$root/scripts/install-deps.sh" image
for tool in buildah chroot mount umount findmnt python3 curl openssl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
# vfs: plain copies, no overlay filesystem or fuse needed, works inside containers.
bah() { buildah --storage-driver vfs "$@"; }

# ------------------------------------------------------------------ 2. rootfs
bash "$root/scripts/image-rootfs.sh" "$binary" "$out/rootfs"

# ------------------------------------------------------------------ 3. build
# OCI format: its configuration has no random hostname or container id (Docker's
# format does), so with fixed timestamps the same files give the same image ID and
# digest. HEALTHCHECK has no OCI field: buildah warns and leaves it out, which is
# what HEALTHCHECK NONE means anyway. The Dockerfile's `build` stage is replaced by
# .build-image (whose rootfs/ its runtime stage copies) and so skipped: nothing is
# pulled (--pull=never fails loudly should the stage be renamed).
epoch=${SOURCE_DATE_EPOCH:-$(git -c safe.directory="$root" -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
old_id=$(bah images --quiet --no-trunc "$image" 2>/dev/null || true)
bah build --pull=never --no-cache --force-rm --format oci --timestamp "$epoch" --iidfile "$out/image-id" \
    --build-context build="$out" -f "$root/deploy/Dockerfile" -t "$image" "$out" ||
    die "buildah build failed (above)"
id=$(cat "$out/image-id")
id=sha256:${id#sha256:}
# A rebuild leaves the previous image untagged; vfs keeps a full copy of each.
if [[ -n $old_id && sha256:${old_id#sha256:} != "$id" ]]; then
    bah rmi "$old_id" >/dev/null 2>&1 || true
fi

digest=$(bah inspect --type image --format '{{.FromImageDigest}}' "$image")
bytes=$(bah inspect --type image --format '{{.Manifest}}' "$image" |
    python3 -c 'import json, sys; print(sum(layer["size"] for layer in json.load(sys.stdin)["layers"]))')
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
if awk -v b="$bytes" -v g="$goal_mib" 'BEGIN { exit !(b <= g * 1048576) }'; then goal=reached; else goal="not reached"; fi
say "built $image"
say "  image ID  $id (its configuration's digest; the same files give the same ID)"
say "  digest    $digest (manifest in local storage, layer uncompressed; a registry's"
say "            digest differs: pin the one \`buildah push --digestfile FILE\` writes)"
say "  size      $bytes bytes uncompressed ($mib MiB; goal <= $goal_mib MiB: $goal)"

# ------------------------------------------------------------------ 4. proof
proof=$(mktemp -d /tmp/scrapeguard-image.XXXXXX)
ro=$proof/root
cid=
pids=()
cleanup() {
    local pid
    set +e
    # What is still running here is left from a failure: no drain to wait for.
    for pid in "${pids[@]+"${pids[@]}"}"; do
        kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    # Everything mounted below $ro (proc, the volumes), then $ro itself.
    if findmnt --mountpoint "$ro" >/dev/null 2>&1; then
        umount -R "$ro" 2>/dev/null || umount -R -l "$ro"
    fi
    [[ -z $cid ]] || bah rm "$cid" >/dev/null
    # Never rm -rf through a mount that is still there.
    if findmnt --mountpoint "$ro" >/dev/null 2>&1; then
        echo "$prog: $ro is still mounted; $proof left in place" >&2
    else
        rm -rf -- "$proof"
    fi
    # Run through sudo (make image as a user): .build-image stays the user's.
    [[ -z ${SUDO_UID:-} ]] || chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The image's own command line: ENTRYPOINT, and CMD's configuration file paths.
# (buildah 1.28's --format has no json function: the whole inspect output, read here.)
bah inspect --type image "$image" >"$proof/inspect.json"
config_lines() { # KEY: one line per element of the OCI configuration's KEY
    python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["OCIv1"]["config"].get(sys.argv[2]) or []))' \
        "$proof/inspect.json" "$1"
}
mapfile -t entrypoint < <(config_lines Entrypoint)
mapfile -t cmd < <(config_lines Cmd)
((${#entrypoint[@]})) || die "the image has no ENTRYPOINT"
web_config= config=
for arg in "${cmd[@]}"; do
    case $arg in
    --web.config.file=*) web_config=${arg#*=} ;;
    --config.file=*) config=${arg#*=} ;;
    esac
done
[[ -n $web_config && -n $config ]] || die "the image's CMD (${cmd[*]}) names no --web.config.file or --config.file"

cid=$(bah from --pull=never --quiet --name "scrapeguard-image-proof-$$" "$image") || die "buildah from $image failed"
mnt=$(bah mount "$cid") || die "buildah mount failed"

# Mount points, as a container runtime makes them for /proc and each volumeMount of
# deploy/base/deployment.yaml. They go into the working container's own layer,
# which `buildah rm` throws away: the image is not changed.
volumes=(/etc/scrapeguard/web /etc/scrapeguard/config /etc/scrapeguard/tls)
mkdir -p "$mnt/proc"
for v in "${volumes[@]}"; do mkdir -p "$mnt$v"; done

# The root, read-only, as readOnlyRootFilesystem makes it.
mkdir "$ro"
mount --bind "$mnt" "$ro" || die "mount --bind of the image's filesystem refused"
# Private: the mounts made below it must not propagate into the host's peer groups
# (on a systemd host / is shared) and outlive the cleanup there.
mount --make-rprivate "$ro" || die "making $ro a private mount refused"
mount -o remount,bind,ro "$ro" || die "remounting the image's filesystem read-only refused"
[[ ,$(findmnt -no OPTIONS --mountpoint "$ro"), == *,ro,* ]] || die "$ro is not mounted read-only"
if touch "$ro/.write-probe" 2>/dev/null; then
    rm -f "$ro/.write-probe"
    die "root could write into the read-only root"
fi

# /proc: every container runtime mounts it, and the process needs it (the Swift
# runtime finds the command line through /proc/self/maps: without /proc it sees no
# arguments). A fresh proc where the sandbox allows it, else the host's.
mount -t proc proc "$ro/proc" 2>/dev/null || mount --rbind /proc "$ro/proc" ||
    die "cannot mount /proc into the image's filesystem"

# The volumes' contents: deploy/'s files and throwaway certificates, owned and
# moded as the Deployment's volumes are (Secrets 0440 with fsGroup 65532, the
# ConfigMap 0444), each bind-mounted read-only at its mountPath.
files=$proof/volumes
certs=$proof/certs
"$root/certs/gen-dev-certs.sh" "$certs" >/dev/null
mkdir -p "$files/web" "$files/config" "$files/tls"
cp "$certs/server.crt" "$files/tls/tls.crt"
cp "$certs/server.key" "$files/tls/tls.key"
cp "$certs/ca.crt" "$files/tls/ca.crt"
cp "$root/deploy/base/config/scrapeguard.yml" "$files/config/scrapeguard.yml"
cp "$root/deploy/base/config/web-config.yml" "$files/web/web-config.yml"
chown -R 0:65532 "$files"
chmod 0755 "$files"/*
chmod 0440 "$files"/web/* "$files"/tls/*
chmod 0444 "$files"/config/*
for v in "${volumes[@]}"; do
    mount --bind "$files/${v##*/}" "$ro$v" || die "bind mount of $v refused"
    mount -o remount,bind,ro "$ro$v" || die "read-only remount of $v refused"
done
for f in "$web_config" "$config"; do
    [[ -f $ro$f ]] || die "the image's CMD names $f, which the Deployment's volumes (${volumes[*]}) do not provide"
done

# in_image ARG...: the image's ENTRYPOINT with ARGs, in the image's filesystem, as
# 65532:65532 (chroot --userspec drops root's groups and every capability).
in_image() { chroot --userspec=65532:65532 "$ro" "${entrypoint[@]}" "$@"; }

check_config() { # WHAT
    local output
    if ! output=$(in_image check-config --web.config.file="$web_config" --config.file="$config" 2>&1); then
        printf '%s\n' "$output" | sed 's/^/    /' >&2
        die "check-config in the image refused $1 (above)"
    fi
    say "proof: check-config, $1:"
    printf '%s\n' "$output" | sed 's/^/    /'
}
check_config "deploy/base's web-config.yml and scrapeguard.yml"
# The dev-certs overlay's web-config admits the dev client certificate's SAN: the
# one the scrape below presents.
cp "$root/deploy/overlays/dev-certs/web-config.yml" "$files/web/web-config.yml"
chown 0:65532 "$files/web/web-config.yml"
chmod 0440 "$files/web/web-config.yml"
check_config "deploy/overlays/dev-certs' web-config.yml"

# Three free ports, held open together while chosen so that no two are the same.
read -r app_port https_port health_port < <(python3 -c '
import socket
held = [socket.socket() for _ in range(3)]
for s in held: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))')

# The stand-in app: one metric whose label deploy/'s policy redacts, as text 0.0.4
# (what the gateway asks an app for), on the host's loopback, which the chroot
# shares.
python3 - "$app_port" >"$proof/app.log" 2>&1 <<'PY' &
import http.server, sys
body = b'# TYPE image_proof_total counter\nimage_proof_total{user_email="someone@example.com"} 42\n'
class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), App).serve_forever()
PY
pids+=($!)
for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$app_port/metrics" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$app_port/metrics" || die "the stand-in app did not start: $(cat "$proof/app.log")"

serve_args=("${cmd[@]}" --web.listen-address="127.0.0.1:$https_port"
    --health.listen-address="127.0.0.1:$health_port" --upstream.url="http://127.0.0.1:$app_port/metrics")
say "proof: ${entrypoint[*]} ${serve_args[*]}"
# Not through in_image: a function in the background is a subshell of its own, and
# $! must be the gateway's pid (chroot execs it).
chroot --userspec=65532:65532 "$ro" "${entrypoint[@]}" "${serve_args[@]}" >"$proof/serve.log" 2>&1 &
gateway=$!
pids+=("$gateway")
ready=
for _ in $(seq 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$health_port/readyz" 2>/dev/null; then ready=1; break; fi
    kill -0 "$gateway" 2>/dev/null || break
    sleep 0.1
done
if [[ -z $ready ]]; then
    sed 's/^/    /' "$proof/serve.log" >&2
    if kill -0 "$gateway" 2>/dev/null; then
        probe=$(curl -sS -o /dev/null -w 'HTTP %{http_code}' "http://127.0.0.1:$health_port/readyz" 2>&1 | tr '\n' ' ' || true)
        die "serve in the image: /readyz on the health port did not answer 200 within 10 s (last try: $probe; the gateway's log above)"
    fi
    wait "$gateway" && status=0 || status=$?
    die "serve in the image exited with status $status before it was ready (its log above)"
fi
say "proof: ready; the gateway's process: $(awk '/^(Uid|Gid|Groups|CapEff):/ { $1 = $1; printf "%s  ", $0 }' "/proc/$gateway/status")"

user=$(sed -n 's/^username=//p' "$root/deploy/base/config/basic-auth.env")
pass=$(sed -n 's/^password=//p' "$root/deploy/base/config/basic-auth.env")
set +e
code=$(curl -sS --max-time 10 --resolve "localhost:$https_port:127.0.0.1" --cacert "$certs/ca.crt" \
    --cert "$certs/client.crt" --key "$certs/client.key" -u "$user:$pass" \
    -o "$proof/body" -w '%{http_code}' "https://localhost:$https_port/metrics" 2>"$proof/curl.err")
rc=$?
set -e
if ((rc != 0)) || [[ $code != 200 ]]; then
    sed 's/^/    /' "$proof/serve.log" >&2
    die "the mTLS + basic-auth scrape of the gateway in the image: curl exit $rc, HTTP ${code:-none}: $(cat "$proof/curl.err") (the gateway's log above)"
fi
want='image_proof_total{user_email="redacted"} 42'
if ! grep -qxF "$want" "$proof/body"; then
    sed 's/^/    /' "$proof/body" >&2
    die "the scrape answered 200 but without the line '$want' (body above)"
fi
say "proof: one scrape over mTLS + basic auth: HTTP $code, '$want'"

kill -TERM "$gateway"
for _ in $(seq 200); do
    kill -0 "$gateway" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$gateway" 2>/dev/null && die "serve in the image still running 20 s after SIGTERM"
wait "$gateway" && status=0 || status=$?
((status == 0)) || {
    sed 's/^/    /' "$proof/serve.log" >&2
    die "serve in the image exited with status $status after SIGTERM (its log above)"
}
say "proof: SIGTERM: drained, exit status 0"

printf 'image: %s %s %s MiB (goal <= %s MiB: %s)\n' "$image" "$digest" "$mib" "$goal_mib" "$goal"
