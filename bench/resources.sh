#!/usr/bin/env bash
# What the gateway costs a pod, in two parts.
#
# The footprint (first; alone with `footprint`, about 15 s): scrapeguard,
# Debian's nginx as the same kind of mTLS + basic-auth proxy (bench/compare.sh's
# settings), and Debian's node_exporter (Go; TLS, client certificates and basic auth
# through exporter-toolkit's --web.config.file), side by side in one run: idle RSS
# and PSS, peak RSS (VmHWM) after scrapes of a 10k-series body through real mTLS and
# basic auth, and the time from exec to ready; then the goals of the issue "A sidecar
# as light as nginx", reached or not.
#
# The load (the full run only): peak RSS (VmHWM) and CPU time per scrape of a real
# exposition through `scrapeguard serve`, over mTLS with basic auth, at several body
# sizes; then stalled scrapers and strangers. The numbers size deploy/'s resource
# requests.
#
# Usage: bench/resources.sh [SCRAPES_PER_SIZE] [SERIES ...]  the footprint, then the load
#                                                            (default: 50 1000 10000 100000)
#        bench/resources.sh footprint                        the footprint alone
#        bench/resources.sh --body N                         print the exposition of N series
# Environment: SCRAPEGUARD_BIN (default: .build/release/scrapeguard),
#              FOOTPRINT_SERIES=10000, FOOTPRINT_SCRAPES=20 (scrapes per server),
#              STARTS=10 (start-ups timed per server), NGINX_WORKERS=1,
#              NODE_EXPORTER_BIN (default: Debian's prometheus-node-exporter);
#              for the load: STALLED="10 30 60 100" (stalled scrapers held at once, in turn),
#              STALLED_SERIES=130000 (about 20 MB of exposition),
#              SOCKET_SEND_BUFFER=0 (server.socket_send_buffer; unset: the default),
#              MEMO_BUDGET=0 (filter.memo_budget; unset: the default),
#              STRANGERS="64 512" (bare TCP connections held at once, in turn)
# Needs: a release build (make release), curl, openssl, python3, ss (iproute2), nginx,
# htpasswd (apache2-utils) and prometheus-node-exporter: scripts/install-deps.sh bench,
# which this runs, installs what is missing.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

# bench/resources.sh --body N: print the exposition of N series and stop.
if [[ ${1:-} == --body ]]; then
    bench_body "${2:-100000}"
    exit 0
fi

prog=bench/${0##*/}
die() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}
# show_log FILE: the end of a server's log, after a failure.
show_log() {
    if [[ -s $1 ]]; then
        echo "--- last lines of $1:" >&2
        tail -n 20 "$1" >&2
    fi
}

root=$(cd "$(dirname "$0")/.." && pwd)
mode=full
if [[ ${1:-} == footprint ]]; then
    mode=footprint
    shift
    (($# == 0)) || die "footprint takes no arguments (the environment sets its sizes)"
fi
scrapes=${1:-50}
shift || true
sizes=("$@")
((${#sizes[@]})) || sizes=(1000 10000 100000)
# STALLED: how many stalled scrapers to hold at once, in turn (see the end).
read -r -a stalled_counts <<<"${STALLED:-10 30 60 100}"
read -r -a stranger_counts <<<"${STRANGERS:-64 512}"
stalled_series=${STALLED_SERIES:-130000}
footprint_series=${FOOTPRINT_SERIES:-10000}
footprint_scrapes=${FOOTPRINT_SCRAPES:-20}
starts=${STARTS:-10}
nginx_workers=${NGINX_WORKERS:-1}
for setting in footprint_series footprint_scrapes starts nginx_workers; do
    [[ ${!setting} =~ ^[1-9][0-9]{0,6}$ ]] || die "${setting^^} must be a positive number, got '${!setting}'"
done
# SCRAPEGUARD_BIN: another binary than the tree's release build (one copied aside
# while the tree is rebuilt, or an image's).
binary=${SCRAPEGUARD_BIN:-$root/.build/release/scrapeguard}
[[ -x $binary ]] || { echo "build it first: make release (or set SCRAPEGUARD_BIN)" >&2; exit 2; }

bash "$root/scripts/install-deps.sh" bench
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx ]] || die "nginx not found after install-deps"
node_exporter=${NODE_EXPORTER_BIN:-$(command -v prometheus-node-exporter || command -v node_exporter || true)}
[[ -n $node_exporter && -x $node_exporter ]] || die "node_exporter not found after install-deps (or set NODE_EXPORTER_BIN)"

work=$(mktemp -d "${TMPDIR:-/tmp}/scrapeguard-resources.XXXXXX")
# Every process started here, stopped on the way out whatever happens.
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/logs"

bash "$root/certs/gen-dev-certs.sh" "$work/certs" >/dev/null
user=prometheus
password=bench-password
hash=$(printf '%s\n' "$password" | "$binary" hash-password)
app_port=$(free_port)
port=$(free_port)
bench_web_config "$user" "$hash" >"$work/web.yml"
printf 'upstream:\n  url: http://127.0.0.1:%s/metrics\n  body_size_limit: 256MiB\n' "$app_port" >"$work/gw.yml"
if [[ -n ${MEMO_BUDGET:-} ]]; then
    printf 'filter:\n  memo_budget: %s\n' "$MEMO_BUDGET" >>"$work/gw.yml"
fi
if [[ -n ${SOCKET_SEND_BUFFER:-} ]]; then
    printf 'server:\n  socket_send_buffer: %s\n' "$SOCKET_SEND_BUFFER" >>"$work/gw.yml"
fi

# The app: serves whichever exposition file `current` names, as prometheus_client would.
cat >"$work/app.py" <<'PY'
import http.server, os, sys
folder = sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        name = open(os.path.join(folder, "current")).read().strip()
        body = open(os.path.join(folder, name), "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
bench_body "$footprint_series" >"$work/body-footprint.txt"
echo "body-footprint.txt" >"$work/current"
python3 "$work/app.py" "$app_port" "$work" 2>/dev/null & app_pid=$!
pids+=("$app_pid")

# mib KIB: KiB as MiB, one decimal.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# tree_pids PID: the process and its children (nginx: the master and its workers).
# shellcheck disable=SC2046 # the children's ids, one word each
tree_pids() { echo "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); }
# status_kib FIELD PID...: a /proc/PID/status field (VmRSS, VmHWM) summed over the processes, KiB.
status_kib() {
    local field=$1 pid total=0
    shift
    for pid; do total=$((total + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status"))); done
    echo "$total"
}
# pss_kib PID...: proportional set size summed over the processes, KiB: pages shared
# between them (nginx's master and workers) or with other processes count once, split.
pss_kib() {
    local pid total=0
    for pid; do total=$((total + $(awk '$1 == "Pss:" {print $2}' "/proc/$pid/smaps_rollup"))); done
    echo "$total"
}

# ================================ the footprint ====================================
# probe.py: when a server is ready, by its first wanted answer.
#   probe.py wait KIND PORT SECONDS
#       exits 0 once the server on PORT answers as KIND wants, 1 after SECONDS.
#   probe.py time RUNS KIND LOG [--template SRC DST]... -- COMMAND...
#       starts COMMAND RUNS times, one after the other, each with fresh ports for @PORT@
#       (served over mTLS) and @HEALTH@ (plain HTTP) in its arguments and in each
#       template SRC written to DST; measures from just before the exec to the first
#       wanted answer (polled every millisecond), then stops the server (SIGTERM) and
#       waits for it to go; prints the median, minimum and maximum in ms, the share of
#       the machine's CPU other processes took meanwhile, and every run in ms.
# KIND: readyz, GET /readyz on @HEALTH@ in plain HTTP answering 200 (scrapeguard's
# readiness, what the kubelet asks); mtls, GET /metrics on @PORT@ over TLS with the
# client certificate and no password answering 401 (the TLS listener, the certificate
# check and basic auth are serving; no bcrypt in the figure, which a password would add).
cat >"$work/probe.py" <<'PY'
import http.client, os, signal, socket, ssl, statistics, subprocess, sys, time
certs = os.environ["PROBE_CERTS"]
tls = ssl.create_default_context(cafile=f"{certs}/ca.crt")
tls.load_cert_chain(f"{certs}/client.crt", f"{certs}/client.key")
WANT = {"readyz": 200, "mtls": 401}

def answer(kind, port):
    """The HTTP status the server on port answers now, None while it does not."""
    try:
        if kind == "readyz":
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
        else:
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=tls)
            conn.request("GET", "/metrics")
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None

def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks: s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks: s.close()
    return ports

# SIGTERM ends the runs through `finally`, and so does the script's end (this process
# re-parented: the script stopped): no server left behind.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
parent = os.getppid()
if sys.argv[1] == "wait":
    kind, port, deadline = sys.argv[2], int(sys.argv[3]), time.monotonic() + float(sys.argv[4])
    while time.monotonic() < deadline:
        if answer(kind, port) == WANT[kind]: sys.exit(0)
        time.sleep(0.01)
    sys.exit(1)

runs, kind, log = int(sys.argv[2]), sys.argv[3], open(sys.argv[4], "ab")
rest = sys.argv[5:]
templates = []
while rest[0] == "--template":
    templates.append((rest[1], rest[2]))
    rest = rest[3:]
command = rest[1:]

def busy_seconds():
    """CPU time the whole machine spent, all cores, from /proc/stat (idle and iowait not counted)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, open("/proc/stat").readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
def own_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
machine_start, own_start, wall_start = busy_seconds(), own_seconds(), time.monotonic()
samples = []
for _ in range(runs):
    port, health = free_ports(2)
    fill = lambda text: text.replace("@PORT@", str(port)).replace("@HEALTH@", str(health))
    if os.getppid() != parent:
        sys.exit("the script stopped")
    for source, target in templates:
        open(target, "w").write(fill(open(source).read()))
    argv = [fill(a) for a in command]
    probed = health if kind == "readyz" else port
    start = time.monotonic_ns()
    server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        while answer(kind, probed) != WANT[kind]:
            if server.poll() is not None:
                sys.exit(f"{argv[0]} exited ({server.returncode}) before it was ready: see {log.name}")
            if time.monotonic_ns() - start > 10e9:
                sys.exit(f"{argv[0]} not ready within 10 s: see {log.name}")
            if os.getppid() != parent:
                sys.exit("the script stopped")
            time.sleep(0.001)
        samples.append((time.monotonic_ns() - start) / 1e6)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
# What other processes took of the machine's CPU meanwhile (the probe and the servers
# it ran, waited for, are its own): start-up times are only comparable on a quiet one.
other = (busy_seconds() - machine_start) - (own_seconds() - own_start)
other_share = max(0, round(100 * other / ((time.monotonic() - wall_start) * os.cpu_count())))
print(f"{statistics.median(samples):.1f} {min(samples):.1f} {max(samples):.1f} {other_share}%", " ".join(f"{s:.1f}" for s in samples))
PY
export PROBE_CERTS=$work/certs
probe() { python3 "$work/probe.py" "$@"; }

# The servers. scrapeguard: its default configuration but for the series memo, off
# (filter.memo_budget: 0) in the row the goals read, since the goals count memory
# before any memo budget; a row with the default memo (16 MiB, committed as it
# fills) and one without the health port beside it.
printf 'upstream:\n  url: http://127.0.0.1:%s/metrics\n' "$app_port" >"$work/sg-default.yml"
printf 'upstream:\n  url: http://127.0.0.1:%s/metrics\nfilter:\n  memo_budget: 0\n' "$app_port" >"$work/sg-memo-off.yml"
sg_command=("$binary" serve --web.config.file="$work/web.yml" --web.listen-address=127.0.0.1:@PORT@ --log.level=warning)
# nginx: bench/compare.sh's proxy (the same certificate, key, client CA, protocols,
# TLS 1.2 suites and groups as scrapeguard's defaults; upstream keep-alive), with the
# password in a bcrypt file (htpasswd -B at scrapeguard's cost: the same check as the
# other two), NGINX_WORKERS workers (1: a sidecar's share) and worker_connections 512,
# scrapeguard's max_connections (nginx allocates its connection table up front, so
# this is memory). Run as root, nginx would hand its workers to nobody, who cannot
# enter the 0700 temporary folder: keep them with the invoking user.
bcrypt_cost=$((10#${hash:4:2}))
htpasswd -nbB -C "$bcrypt_cost" "$user" "$password" | sed '/^$/d' >"$work/htpasswd-bcrypt"
mkdir -p "$work/nginx"
nginx_user=
[[ $(id -u) == 0 ]] && nginx_user="user $(id -un) $(id -gn);"
cat >"$work/nginx/nginx.conf.in" <<EOF
$nginx_user
daemon off;
worker_processes $nginx_workers;
pid $work/nginx/nginx.pid;
error_log $work/logs/nginx.log warn;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
$(nginx_mtls_proxy "$work/certs" "$app_port")
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:@PORT@ ssl;
        auth_basic metrics;
        auth_basic_user_file $work/htpasswd-bcrypt;
        location = /metrics { proxy_pass http://app; }
    }
}
EOF
nginx_command=("$nginx" -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/logs/nginx.log")
# node_exporter: the same certificates and bcrypt user through exporter-toolkit (the
# one in Debian's node_exporter 1.5 refuses client_allowed_sans, unknown to it: the
# one line left out), only the textfile collector, reading the same 10k-series body from a .prom
# file: the same series served, parsed and re-encoded on every scrape, but not
# proxied, so its figures are a reference for a Go exporter's, not a proxy's. Its own
# go_*/process_*/promhttp_* metrics stay on (its defaults).
bench_web_config "$user" "$hash" | grep -v client_allowed_sans >"$work/node-web.yml"
mkdir -p "$work/textfile" "$work/textfile-empty"
cp "$work/body-footprint.txt" "$work/textfile/app.prom"
node_command=("$node_exporter" --web.listen-address=127.0.0.1:@PORT@ --web.config.file="$work/node-web.yml"
    --collector.disable-defaults --collector.textfile --log.level=warn)

# Idle and peak, one server at a time (two scrapeguards at once would share their
# binary's and libraries' pages, and each one's PSS would be a fraction of its own):
# started, waited for (its first mTLS answer; scrapeguard's /readyz too where it has a
# health port), left 1 s to settle and read; then FOOTPRINT_SCRAPES scrapes of the
# body with the password over one keep-alive connection, as Prometheus scrapes a
# target, and read again; then stopped.
servers=(sg sg-memo sg-no-health nginx node)
declare -A label=(
    [sg]="scrapeguard (memo off)"
    [sg-memo]="scrapeguard (default memo)"
    [sg-no-health]="scrapeguard (memo off, no health port)"
    [nginx]="nginx (master + $nginx_workers worker$( ((nginx_workers == 1)) || echo s))"
    [node]="node_exporter (textfile)"
)
declare -A idle_rss idle_pss peak_rss after_pss processes
footprint_bytes=$(stat -c %s "$work/body-footprint.txt")
# footprint SERVER COMMAND...: measures SERVER, run as COMMAND (its @PORT@ and
# @HEALTH@ replaced by free ports).
footprint() {
    local server=$1 port health pid url answers served tree
    shift
    # Both ports held while they are chosen, so that they differ.
    read -r port health < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
    local argv=("${@//@PORT@/$port}")
    argv=("${argv[@]//@HEALTH@/$health}")
    if [[ $server == nginx ]]; then
        sed "s/@PORT@/$port/" "$work/nginx/nginx.conf.in" >"$work/nginx/nginx.conf"
        "$nginx" -t -q -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/logs/nginx.log" >>"$work/logs/nginx.log" 2>&1 ||
            { show_log "$work/logs/nginx.log"; die "nginx refused $work/nginx/nginx.conf"; }
    fi
    "${argv[@]}" >>"$work/logs/$server.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    probe wait mtls "$port" 10 || { show_log "$work/logs/$server.log"; die "${label[$server]} did not answer over mTLS within 10 s"; }
    if [[ " ${argv[*]} " == *" --health.listen-address=127.0.0.1:$health "* ]]; then
        probe wait readyz "$health" 10 || { show_log "$work/logs/$server.log"; die "${label[$server]} not ready within 10 s"; }
    fi
    sleep 1
    read -r -a tree <<<"$(tree_pids "$pid")"
    processes[$server]=${#tree[@]}
    idle_rss[$server]=$(status_kib VmRSS "${tree[@]}")
    idle_pss[$server]=$(pss_kib "${tree[@]}")

    url=https://127.0.0.1:$port/metrics
    local outputs=(-o "$work/first-$server.txt" "$url")
    for _ in $(seq 2 "$footprint_scrapes"); do outputs+=(-o /dev/null "$url"); done
    curl -s --max-time 60 --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" --key "$work/certs/client.key" \
        -u "$user:$password" -w '%{http_code} %{size_download}\n' "${outputs[@]}" >"$work/scrapes-$server.txt" || true
    answers=$(sort "$work/scrapes-$server.txt" | uniq -c | awk '{printf "%s%s x %s (%s bytes)", sep, $1, $2, $3; sep = ", "}')
    [[ $(awk '$1 == 200' "$work/scrapes-$server.txt" | wc -l) == "$footprint_scrapes" ]] ||
        { show_log "$work/logs/$server.log"; die "${label[$server]}: not $footprint_scrapes answers 200 but: $answers"; }
    # Checked, so that the peak is that of the work meant: the proxies pass the body
    # through unchanged, node_exporter serves every series of its textfile.
    if [[ $server == node ]]; then
        served=$(grep -c '^app_http_requests_total{' "$work/first-$server.txt" || true)
        ((served == footprint_series)) || die "node_exporter served $served of the $footprint_series series (see node_textfile_scrape_error)"
    else
        cmp -s "$work/first-$server.txt" "$work/body-footprint.txt" || die "${label[$server]} did not pass the body through unchanged"
    fi
    kill -0 "$pid" 2>/dev/null || { show_log "$work/logs/$server.log"; die "${label[$server]} died while scraped"; }
    read -r -a tree <<<"$(tree_pids "$pid")"
    peak_rss[$server]=$(status_kib VmHWM "${tree[@]}")
    after_pss[$server]=$(pss_kib "${tree[@]}")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
footprint sg "${sg_command[@]}" --config.file="$work/sg-memo-off.yml" --health.listen-address=127.0.0.1:@HEALTH@
footprint sg-memo "${sg_command[@]}" --config.file="$work/sg-default.yml" --health.listen-address=127.0.0.1:@HEALTH@
footprint sg-no-health "${sg_command[@]}" --config.file="$work/sg-memo-off.yml" --health.listen-address=none
footprint nginx "${nginx_command[@]}"
footprint node "${node_command[@]}" --collector.textfile.directory="$work/textfile"

# Start-up to ready, STARTS times each, one server at a time (no other server of this
# script running): scrapeguard's readiness on its health port, the goal's measure;
# then the first mTLS answer of each, the one measure all three have.
declare -A startup
startup[sg-readyz]=$(probe time "$starts" readyz "$work/logs/startup-sg.log" -- "${sg_command[@]}" \
    --config.file="$work/sg-default.yml" --health.listen-address=127.0.0.1:@HEALTH@) ||
    { show_log "$work/logs/startup-sg.log"; die "timing scrapeguard's start-up failed"; }
startup[sg-mtls]=$(probe time "$starts" mtls "$work/logs/startup-sg.log" -- "${sg_command[@]}" \
    --config.file="$work/sg-default.yml" --health.listen-address=127.0.0.1:@HEALTH@) ||
    { show_log "$work/logs/startup-sg.log"; die "timing scrapeguard's start-up failed"; }
startup[nginx-mtls]=$(probe time "$starts" mtls "$work/logs/startup-nginx.log" \
    --template "$work/nginx/nginx.conf.in" "$work/nginx/nginx.conf" -- "${nginx_command[@]}") ||
    { show_log "$work/logs/startup-nginx.log"; show_log "$work/logs/nginx.log"; die "timing nginx's start-up failed"; }
startup[node-mtls]=$(probe time "$starts" mtls "$work/logs/startup-node.log" -- "${node_command[@]}" \
    --collector.textfile.directory="$work/textfile-empty") ||
    { show_log "$work/logs/startup-node.log"; die "timing node_exporter's start-up failed"; }

series_label=$footprint_series
((footprint_series % 1000 == 0)) && series_label=$((footprint_series / 1000))k
printf 'footprint: %s series (%s bytes) from the same app; %s scrapes each through mTLS + basic auth (curl, one keep-alive connection)\n' \
    "$footprint_series" "$footprint_bytes" "$footprint_scrapes"
printf '%-40s %9s %13s %13s %14s %15s\n' server processes idle_rss_mib idle_pss_mib peak_rss_mib pss_after_mib
for server in "${servers[@]}"; do
    printf '%-40s %9s %13s %13s %14s %15s\n' "${label[$server]}" "${processes[$server]}" "$(mib "${idle_rss[$server]}")" \
        "$(mib "${idle_pss[$server]}")" "$(mib "${peak_rss[$server]}")" "$(mib "${after_pss[$server]}")"
done
printf '\nstart-up to ready: %s starts each, ms from just before exec (warm page cache)\n' "$starts"
printf '%-58s %8s %8s %8s %10s  %s\n' measure median min max other_cpu runs
declare -A startup_label=(
    [sg-readyz]="scrapeguard: first 200 from /readyz (health port)"
    [sg-mtls]="scrapeguard: first mTLS answer (401, no password)"
    [nginx-mtls]="nginx: first mTLS answer (401, no password)"
    [node-mtls]="node_exporter: first mTLS answer (401, no password)"
)
for measure in sg-readyz sg-mtls nginx-mtls node-mtls; do
    read -r median min max other runs <<<"${startup[$measure]}"
    printf '%-58s %8s %8s %8s %10s  %s\n' "${startup_label[$measure]}" "$median" "$min" "$max" "$other" "$runs"
done

# goal WHAT VALUE BOUND UNIT: "goal: WHAT VALUE UNIT ≤ BOUND UNIT: reached" (or not).
goal() {
    local verdict="not reached"
    awk -v v="$2" -v b="$3" 'BEGIN { exit !(v <= b) }' && verdict=reached
    printf 'goal: %s %s %s ≤ %s %s: %s\n' "$1" "$2" "$4" "$3" "$4" "$verdict"
}
echo
goal "scrapeguard idle RSS" "$(awk -v k="${idle_rss[sg]}" 'BEGIN { printf "%.2f", k / 1024 }')" 12 MiB
goal "scrapeguard peak RSS during $series_label-series scrapes" "$(awk -v k="${peak_rss[sg]}" 'BEGIN { printf "%.2f", k / 1024 }')" 16 MiB
read -r sg_ready_median _ _ sg_ready_other _ <<<"${startup[sg-readyz]}"
goal "scrapeguard start-up to ready (median of $starts)" "$sg_ready_median" 100 ms
if ((${sg_ready_other%\%} > 10)); then
    echo "WARNING: other processes took $sg_ready_other of the machine's CPU while scrapeguard's start-up was timed: not a quiet machine, the start-up figures are not comparable with a quiet one's"
fi
cat <<EOF
notes: the goals read the first row (health port on, series memo off: the goals count
  memory before any memo budget). RSS is VmRSS, peak VmHWM (which includes start-up),
  PSS /proc/PID/smaps_rollup's, each summed over a server's processes (nginx's RSS sum
  counts the pages its master and workers share twice; its PSS does not). PSS also
  splits the pages shared with any other process on the machine: a dynamically linked
  scrapeguard's with a Swift toolchain or test process (the same /opt/swift
  libraries), so it is lower while one is alive; in a pod nothing else maps them, and
  RSS is the figure to size by. nginx checks the password with bcrypt on every request, buffers large
  upstream bodies to proxy_temp files (its default) and does not check the client
  certificate's SAN; node_exporter serves the body from its textfile collector (parsed
  and re-encoded on every scrape), it does not proxy it: its peak is a reference.
  Start-up: node_exporter's textfile folder is empty there.
EOF
[[ $mode == footprint ]] && exit 0

# ================================== the load =======================================
# scrapeguard alone (health port off), the app switched from one body to the next.
echo
printf 'load: scrapeguard (health port off), %s scrapes per size over one keep-alive connection\n' "$scrapes"
for series in "${sizes[@]}"; do
    bench_body "$series" >"$work/body-$series.txt"
done
echo "body-${sizes[0]}.txt" >"$work/current"
"$binary" serve --web.config.file="$work/web.yml" --config.file="$work/gw.yml" \
    --web.listen-address=127.0.0.1:"$port" --health.listen-address=none --log.level=warning & gateway_pid=$!
pids+=("$gateway_pid")
for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" --key "$work/certs/client.key" \
        -u "prometheus:$password" "https://localhost:$port/metrics" && break
    sleep 0.1
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$gateway_pid/stat"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$gateway_pid/status"; }
ticks_per_second=$(getconf CLK_TCK)
idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$gateway_pid/status")

printf '%-8s %12s %14s %16s\n' series body_bytes cpu_ms_per_scrape peak_rss_mib
for series in "${sizes[@]}"; do
    echo "body-$series.txt" >"$work/current"
    bytes=$(stat -c %s "$work/body-$series.txt")
    urls=()
    for _ in $(seq "$scrapes"); do urls+=("https://localhost:$port/metrics"); done
    before=$(cpu_ticks)
    curl -s --fail --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" --key "$work/certs/client.key" \
        -u "prometheus:$password" "${urls[@]}" >/dev/null
    after=$(cpu_ticks)
    cpu_ms=$(python3 -c "print(round(($after - $before) * 1000 / $ticks_per_second / $scrapes, 2))")
    printf '%-8s %12s %14s %16s\n' "$series" "$bytes" "$cpu_ms" "$(python3 -c "print(round($(hwm_kib) / 1024, 1))")"
done
printf 'idle RSS before scraping: %s MiB\n' "$(python3 -c "print(round($idle_rss / 1024, 1))")"

# Stalled scrapers: N authenticated scrapes of a ~20 MB body whose clients never read
# (a 4 KiB receive window), held 3 s (under the default write_timeout of 10 s, which
# would close them). RSS while they are held, beside the max_buffered_bytes budget
# (32 MiB by default) and the idle size; then whether a real scrape is served meanwhile.
bench_body "$stalled_series" >"$work/body-stalled.txt"
echo "body-stalled.txt" >"$work/current"
cat >"$work/stall.py" <<'PY'
import base64, socket, ssl, sys, time
port, folder, auth, count, hold = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
ctx = ssl.create_default_context(cafile=f"{folder}/ca.crt")
ctx.load_cert_chain(f"{folder}/client.crt", f"{folder}/client.key")
token = base64.b64encode(auth.encode()).decode()
conns = []
for _ in range(count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    t = ctx.wrap_socket(s, server_hostname="localhost")
    t.sendall(f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode())
    conns.append(t)
print("held", flush=True)
time.sleep(hold)
PY
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$gateway_pid/status"; }
real_scrape_status() {
    curl -s -o /dev/null -w '%{http_code}' --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" \
        --key "$work/certs/client.key" -u "prometheus:$password" "https://localhost:$port/metrics"
}
# wait_until_held OUTPUT PID: until the helper says "held" (then 3 s more); stops the
# run if it died first.
wait_until_held() {
    until grep -q held "$1" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || { echo "a load helper failed" >&2; exit 1; }
        sleep 0.1
    done
    sleep 3
}
# Kernel memory of the TCP sockets `ss` selects (queued, received and reserved bytes),
# in MiB: charged to the pod's cgroup, shown in no RSS.
socket_mib() {
    ss -tmnH state established "$1" | grep -o 'skmem:([^)]*)' | awk -F'[(,)]' '
        { for (i = 2; i <= NF; i++) if ($i ~ /^[rwf][0-9]/) total += substr($i, 2) }
        END { printf "%.1f", total / 1048576 }'
}
gateway_sockets="( sport = :$port or dport = :$app_port )"
app_sockets="( sport = :$app_port )"
printf '\n%-16s %14s %14s %18s %14s %12s\n' stalled_scrapes body_bytes rss_held_mib gateway_tcp_mib app_tcp_mib real_scrape
for count in "${stalled_counts[@]}"; do
    python3 "$work/stall.py" "$port" "$work/certs" "prometheus:$password" "$count" 6 >"$work/stall.out" & stall_pid=$!
    wait_until_held "$work/stall.out" "$stall_pid"
    held=$(rss_kib)
    gateway_tcp=$(socket_mib "$gateway_sockets")
    app_tcp=$(socket_mib "$app_sockets")
    status=$(real_scrape_status)
    wait "$stall_pid"
    printf '%-16s %14s %14s %18s %14s %12s\n' "$count" "$(stat -c %s "$work/body-stalled.txt")" \
        "$(python3 -c "print(round($held / 1024, 1))")" "$gateway_tcp" "$app_tcp" "$status"
    sleep 1
done
printf 'budget (max_buffered_bytes): 32 MiB; deploy/ limit: 128 MiB\n'

# Strangers: N bare TCP connections from 127.0.0.2 to 127.0.0.9 (eight sources, none
# the scraper's) that never start TLS, each replaced as soon as the gateway closes it, held 6 s. RSS and the gateway's open connections while they are
# held, whether a real scrape is served meanwhile, and what the connection budgets
# closed (scrapeguard_connections_rejected_total, by reason; counted from the start).
cat >"$work/strangers.py" <<'PY'
import selectors, socket, sys, time
port, count, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
selector = selectors.DefaultSelector()
refused = 0
def connect():
    global refused
    try:
        s = socket.create_connection(("127.0.0.1", port), source_address=(f"127.0.0.{2 + connect.made % 8}", 0))
        connect.made += 1
    except OSError as error:
        refused += 1
        if refused == 1:
            print("first refusal:", error, file=sys.stderr, flush=True)
        return
    selector.register(s, selectors.EVENT_READ)
connect.made = 0
for _ in range(count):
    connect()
print("held", flush=True)
replaced, end = 0, time.monotonic() + hold
while time.monotonic() < end:
    for key, _ in selector.select(timeout=0.1):
        try:
            data = key.fileobj.recv(1)
        except OSError:
            data = b""
        if not data:
            selector.unregister(key.fileobj)
            key.fileobj.close()
            connect()
            replaced += 1
print("replaced", replaced, "refused", refused, flush=True)
PY
gateway_metric() {
    curl -s --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" --key "$work/certs/client.key" \
        -u "prometheus:$password" "https://localhost:$port/gateway/metrics" | awk -v name="$1" '$1 == name {print $2}'
}
rejected() { gateway_metric "scrapeguard_connections_rejected_total{reason=\"$1\"}"; }
printf '\n%-18s %14s %16s %12s %10s %16s %20s\n' stranger_conns rss_held_mib open_connections real_scrape replaced \
    closed_by_budget closed_by_source_share
kill -0 "$gateway_pid" || { echo "the gateway is gone" >&2; exit 1; }
for count in "${stranger_counts[@]}"; do
    budget_before=$(rejected unauthenticated_budget); share_before=$(rejected unauthenticated_per_source)
    python3 "$work/strangers.py" "$port" "$count" 6 >"$work/strangers.out" & strangers_pid=$!
    wait_until_held "$work/strangers.out" "$strangers_pid"
    held=$(rss_kib)
    open=$(gateway_metric scrapeguard_open_connections)
    status=$(real_scrape_status)
    wait "$strangers_pid"
    printf '%-18s %14s %16s %12s %10s %16s %20s\n' "$count" "$(python3 -c "print(round($held / 1024, 1))")" "$open" \
        "$status" "$(awk '/replaced/ {print $2}' "$work/strangers.out")" \
        "$(( $(rejected unauthenticated_budget) - ${budget_before:-0} ))" \
        "$(( $(rejected unauthenticated_per_source) - ${share_before:-0} ))"
    sleep 1
done
printf 'budgets: max_unauthenticated_connections 64, per source 16; max_connections 512\n'
