#!/usr/bin/env bash
# Measures what the gateway costs a pod: peak RSS (VmHWM) and CPU time per scrape
# of a real exposition through `scrapeguard serve` (release build), over mTLS with
# basic auth, at several body sizes. The numbers size deploy/'s resource requests.
#
# Usage: bench/resources.sh [SCRAPES_PER_SIZE] [SERIES ...]   (default: 50 1000 10000 100000)
# Environment: STALLED="10 30 60 100" (stalled scrapers held at once, in turn),
#              STALLED_SERIES=130000 (about 20 MB of exposition),
#              SOCKET_SEND_BUFFER=0 (server.socket_send_buffer; unset: the default),
#              MEMO_BUDGET=0 (filter.memo_budget; unset: the default),
#              STRANGERS="64 512" (bare TCP connections held at once, in turn)
# Needs: a release build (make release), curl, openssl, python3, ss (iproute2).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

# bench/resources.sh --body N: print the exposition of N series and stop.
if [[ ${1:-} == --body ]]; then
    bench_body "${2:-100000}"
    exit 0
fi

root=$(cd "$(dirname "$0")/.." && pwd)
scrapes=${1:-50}
shift || true
sizes=("$@")
((${#sizes[@]})) || sizes=(1000 10000 100000)
# STALLED: how many stalled scrapers to hold at once, in turn (see the end).
read -r -a stalled_counts <<<"${STALLED:-10 30 60 100}"
read -r -a stranger_counts <<<"${STRANGERS:-64 512}"
stalled_series=${STALLED_SERIES:-130000}
binary=$root/.build/release/scrapeguard
[[ -x $binary ]] || { echo "build it first: make release" >&2; exit 2; }

work=$(mktemp -d)
cleanup() {
    if [[ -n ${gateway_pid:-} ]]; then kill "$gateway_pid" 2>/dev/null || true; fi
    if [[ -n ${app_pid:-} ]]; then kill "$app_pid" 2>/dev/null || true; fi
    rm -rf -- "$work"
}
trap cleanup EXIT


bash "$root/certs/gen-dev-certs.sh" "$work/certs" >/dev/null
password=bench-password
hash=$(printf '%s\n' "$password" | "$binary" hash-password)
app_port=$(free_port)
port=$(free_port)
bench_web_config prometheus "$hash" >"$work/web.yml"
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
for series in "${sizes[@]}"; do
    bench_body "$series" >"$work/body-$series.txt"
done
echo "body-${sizes[0]}.txt" >"$work/current"
python3 "$work/app.py" "$app_port" "$work" 2>/dev/null & app_pid=$!
"$binary" serve --web.config.file="$work/web.yml" --config.file="$work/gw.yml" \
    --web.listen-address=127.0.0.1:"$port" --health.listen-address=none --log.level=warning & gateway_pid=$!
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
