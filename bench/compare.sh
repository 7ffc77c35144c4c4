#!/usr/bin/env bash
# Side by side, in one run and on the same upstream body: plain HTTP straight to the
# upstream; Debian's nginx as an mTLS + basic-auth reverse proxy (an apr1 password
# file, then a bcrypt one); scrapeguard passing through, with a PII policy and with a
# capped policy. wrk (keep-alive) gives scrapes per second and p50/p99 latency,
# `openssl s_time` full handshakes per second with a client certificate, /proc the
# peak RSS of the gateway and of nginx's workers at each body size and the CPU each
# part of a row took per scrape (the proxy, the upstream, wrk, the kernel's packet
# processing), and from that the most any proxy could reach were it free. Prints the tables
# with ratios against nginx of the same run, the goals reached or not, and the
# command that made them.
#
# Usage: bench/compare.sh [--duration 10s] [--connections 4] [--handshake-time SECONDS]
#                         [--memo-budget SIZE] [--out FILE.md] [SERIES ...]
#                         (default series: 1000 10000 100000)
# Needs: a release build (make release). Installs nginx, wrk, apache2-utils and gcc
# with apt when missing (scripts/install-deps.sh bench). A default run takes about
# 4 minutes: 18 rows of 10 s, 2 x 10 s of handshakes, the setup and the checks.
# Run it on a quiet machine: the report says how much CPU other processes took.
#
# wrk cannot present a client certificate: bench/wrk-client-cert.c, built here into
# the temporary folder, is LD_PRELOADed into it and loads one into wrk's SSL_CTX.
set -euo pipefail

prog=bench/${0##*/}
command_line=$(printf '%q ' "$0" "$@")
command_line=${command_line% }

usage() {
    cat <<EOF
usage: $prog [--duration 10s] [--connections 4] [--handshake-time SECONDS] [--memo-budget SIZE] [--out FILE.md] [SERIES ...]

  --duration D          how long wrk loads each (series, setup) row; wrk's syntax (10s, 1m); default 10s
  --connections N       wrk's keep-alive connections, all on one wrk thread; default 4
  --handshake-time S    seconds of openssl s_time per server; default: the duration
  --memo-budget SIZE    scrapeguard's filter.memo_budget (e.g. 64MiB, sized for the largest
                        body: scrapeguard filter --repeat 2 shows what a scrape holds); default:
                        scrapeguard's default, 16MiB
  --out FILE            also write the tables as markdown (for docs/PERFORMANCE.md)
  SERIES                body sizes in series, measured in increasing order; default 1000 10000 100000
EOF
}
die() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}

duration=10s
connections=4
handshake_time=
memo_budget=
out_file=
sizes=()
while (($#)); do
    case $1 in
    --duration) duration=${2:?--duration needs a value}; shift ;;
    --duration=*) duration=${1#*=} ;;
    --connections) connections=${2:?--connections needs a value}; shift ;;
    --connections=*) connections=${1#*=} ;;
    --handshake-time) handshake_time=${2:?--handshake-time needs a value}; shift ;;
    --handshake-time=*) handshake_time=${1#*=} ;;
    --memo-budget) memo_budget=${2:?--memo-budget needs a size}; shift ;;
    --memo-budget=*) memo_budget=${1#*=} ;;
    --out) out_file=${2:?--out needs a file}; shift ;;
    --out=*) out_file=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) sizes+=("$1") ;;
    esac
    shift
done
((${#sizes[@]})) || sizes=(1000 10000 100000)
for series in "${sizes[@]}"; do
    [[ $series =~ ^[1-9][0-9]{0,7}$ ]] || die "SERIES must be a positive number of series, got '$series'"
done
# Increasing order: VmHWM only grows, so the peak read after each size is that size's.
mapfile -t sizes < <(printf '%s\n' "${sizes[@]}" | sort -n -u)
[[ $connections =~ ^[1-9][0-9]{0,4}$ ]] || die "--connections must be a positive number, got '$connections'"
if [[ $duration =~ ^([1-9][0-9]*)(s?)$ ]]; then
    duration_seconds=${BASH_REMATCH[1]}
elif [[ $duration =~ ^([1-9][0-9]*)m$ ]]; then
    duration_seconds=$((BASH_REMATCH[1] * 60))
else
    die "--duration must look like 10s or 2m, got '$duration'"
fi
handshake_time=${handshake_time:-$duration_seconds}
if [[ -z $memo_budget ]]; then
    memo_budget_kib=$((16 * 1024))
elif [[ $memo_budget =~ ^([1-9][0-9]{0,6})(KiB|MiB)$ ]]; then
    memo_budget_kib=${BASH_REMATCH[1]}
    [[ ${BASH_REMATCH[2]} == MiB ]] && memo_budget_kib=$((memo_budget_kib * 1024))
else
    die "--memo-budget must look like 64MiB or 512KiB, got '$memo_budget'"
fi
[[ $handshake_time =~ ^[1-9][0-9]*$ ]] || die "--handshake-time must be whole seconds, got '$handshake_time'"

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
binary=$root/.build/release/scrapeguard
[[ -x $binary ]] || { echo "build it first: make release" >&2; exit 2; }
if [[ -n $out_file ]]; then
    out_dir=$(cd "$(dirname "$out_file")" 2>/dev/null && pwd) || die "no such folder for --out: $(dirname "$out_file")"
    out_file=$out_dir/$(basename "$out_file")
    [[ -w $out_dir && (! -e $out_file || -w $out_file) ]] || die "cannot write $out_file"
fi

bash "$root/scripts/install-deps.sh" bench
nginx=$(command -v nginx || echo /usr/sbin/nginx)
wrk=$(command -v wrk) || die "wrk not found after install-deps"
# The shim only works when wrk calls the shared libssl's SSL_CTX_new (Debian's does).
[[ $(ldd "$wrk") == *libssl.so* ]] ||
    die "$wrk does not link libssl dynamically: the client-certificate shim cannot reach it"

work=$(mktemp -d "${TMPDIR:-/tmp}/scrapeguard-compare.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# show_log FILE: the end of a server's log, after a failure.
show_log() {
    if [[ -s $1 ]]; then
        echo "--- last lines of $1:" >&2
        tail -n 20 "$1" >&2
    fi
}

echo "compare: setting up in $work"
mkdir -p "$work/logs" "$work/wrk"

# --- material: certificates, passwords, bodies ----------------------------------
bash "$root/certs/gen-dev-certs.sh" "$work/certs" >/dev/null
certs=$work/certs
user=prometheus
password=bench-password
auth_header="Authorization: Basic $(printf '%s:%s' "$user" "$password" | base64 -w0)"
# scrapeguard's hash (bcrypt, its default cost); nginx's bcrypt file made with
# htpasswd -B at the same cost, as a user would; the apr1 file with openssl.
sg_hash=$(printf '%s\n' "$password" | "$binary" hash-password)
bcrypt_cost=$((10#${sg_hash:4:2}))
htpasswd -nbB -C "$bcrypt_cost" "$user" "$password" | sed '/^$/d' >"$work/htpasswd-bcrypt"
printf '%s:%s\n' "$user" "$(openssl passwd -apr1 "$password")" >"$work/htpasswd-apr1"
openssl rand -hex 32 >"$work/pii.key"
for series in "${sizes[@]}"; do
    bench_body "$series" >"$work/body-$series.txt"
done
ln -sfn "body-${sizes[0]}.txt" "$work/current.txt"

# Six ports at once, all held while they are chosen, so no two are the same.
read -r up_port apr1_port bcrypt_port pass_port pii_port capped_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')

# --- nginx: the upstream (a static file) and the reverse proxy -----------------
# Run as root, nginx would hand its workers to nobody, who cannot enter the 0700
# temporary folder to read the password files: keep them with the invoking user.
nginx_user=
[[ $(id -u) == 0 ]] && nginx_user="user $(id -un) $(id -gn);"
nginx_common() { # nginx_common DIR LOG: the top of a config of our own, nothing from /etc/nginx
    cat <<EOF
$nginx_user
daemon off;
pid $1/nginx.pid;
error_log $2 warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {
    cat <<EOF
    access_log off;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
EOF
}
mkdir -p "$work/nginx-up" "$work/nginx-proxy"
# The app stand-in: one worker serving whichever body current.txt points at (the
# file is opened on every request, so switching the link switches the body).
{
    nginx_common "$work/nginx-up" "$work/logs/nginx-up.log"
    cat <<EOF
worker_processes 1;
http {
$(nginx_http_common "$work/nginx-up")
    types { }
    default_type "text/plain; version=0.0.4; charset=utf-8";
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$up_port;
        location = /metrics { alias $work/current.txt; }
    }
}
EOF
} >"$work/nginx-up/nginx.conf"
# The proxy: as many workers as cores (scrapeguard runs one event loop per core:
# MultiThreadedEventLoopGroup.singleton), the same certificate, key, client CA,
# protocols, TLS 1.2 suites and groups as scrapeguard's defaults, upstream keep-alive,
# nginx's defaults otherwise. One server block per password file.
{
    nginx_common "$work/nginx-proxy" "$work/logs/nginx-proxy.log"
    cat <<EOF
worker_processes auto;
http {
$(nginx_http_common "$work/nginx-proxy")
$(nginx_mtls_proxy "$certs" "$up_port")
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:$apr1_port ssl;
        auth_basic metrics;
        auth_basic_user_file $work/htpasswd-apr1;
        location = /metrics { proxy_pass http://app; }
    }
    server {
        listen 127.0.0.1:$bcrypt_port ssl;
        auth_basic metrics;
        auth_basic_user_file $work/htpasswd-bcrypt;
        location = /metrics { proxy_pass http://app; }
    }
}
EOF
} >"$work/nginx-proxy/nginx.conf"
for name in up proxy; do
    "$nginx" -t -q -p "$work/nginx-$name/" -c "$work/nginx-$name/nginx.conf" -e "$work/logs/nginx-$name.log" \
        >"$work/logs/nginx-$name.out" 2>&1 ||
        { show_log "$work/logs/nginx-$name.out"; show_log "$work/logs/nginx-$name.log"; die "nginx refused $work/nginx-$name/nginx.conf"; }
    "$nginx" -p "$work/nginx-$name/" -c "$work/nginx-$name/nginx.conf" -e "$work/logs/nginx-$name.log" \
        >>"$work/logs/nginx-$name.out" 2>&1 &
    pids+=($!)
    [[ $name == up ]] && up_pid=$! || proxy_pid=$!
done

# --- scrapeguard: one process per policy -----------------------------------------
bench_web_config "$user" "$sg_hash" >"$work/web.yml"
upstream_yaml="upstream:
  url: http://127.0.0.1:$up_port/metrics
  body_size_limit: 256MiB${memo_budget:+
filter:
  memo_budget: $memo_budget}"
printf '%s\n' "$upstream_yaml" >"$work/sg-pass.yml"
cat >"$work/sg-pii.yml" <<YAML
$upstream_yaml
pii:
  hash_key_file: $work/pii.key
  labels:
    - names: [session_id]
      action: hash
    - name_regex: ".*_email"
      action: hash
  detectors:
    - detector: email
      action: redact
    - detector: ipv4
      action: redact
YAML
cat >"$work/sg-capped.yml" <<YAML
$upstream_yaml
limits:
  sample_limit: 50000
  series_per_metric: 5000
  values_per_label: 1000
YAML
declare -A sg_port=([pass]=$pass_port [pii]=$pii_port [capped]=$capped_port) sg_pid=()
for policy in pass pii capped; do
    "$binary" check-config --web.config.file="$work/web.yml" --config.file="$work/sg-$policy.yml" >"$work/logs/check-$policy.log" 2>&1 ||
        { show_log "$work/logs/check-$policy.log"; die "check-config refused sg-$policy.yml"; }
    "$binary" serve --web.config.file="$work/web.yml" --config.file="$work/sg-$policy.yml" \
        --web.listen-address="127.0.0.1:${sg_port[$policy]}" --health.listen-address=none --log.level=warning \
        >"$work/logs/sg-$policy.log" 2>&1 &
    pids+=($!)
    sg_pid[$policy]=$!
done

# --- the endpoints, checked before anything is measured --------------------------
declare -A url=(
    [direct]=http://127.0.0.1:$up_port/metrics
    [nginx-apr1]=https://127.0.0.1:$apr1_port/metrics
    [nginx-bcrypt]=https://127.0.0.1:$bcrypt_port/metrics
    [sg-pass]=https://127.0.0.1:$pass_port/metrics
    [sg-pii]=https://127.0.0.1:$pii_port/metrics
    [sg-capped]=https://127.0.0.1:$capped_port/metrics
)
setups=(direct nginx-apr1 nginx-bcrypt sg-pass sg-pii sg-capped)
log_of() { case $1 in direct) echo "$work/logs/nginx-up.log" ;; nginx-*) echo "$work/logs/nginx-proxy.log" ;; *) echo "$work/logs/$1.log" ;; esac; }
# fetch SETUP OUTFILE [curl options]: prints the HTTP status (000: no response).
fetch() {
    local setup=$1 outfile=$2
    shift 2
    local tls=()
    [[ $setup == direct ]] || tls=(--cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key")
    curl -s -o "$outfile" -w '%{http_code}' --max-time 30 "${tls[@]+"${tls[@]}"}" "$@" "${url[$setup]}" || true
}
for setup in "${setups[@]}"; do
    for _ in $(seq 100); do
        [[ $(fetch "$setup" /dev/null -u "$user:$password") == 200 ]] && continue 2
        sleep 0.1
    done
    show_log "$(log_of "$setup")"
    die "$setup (${url[$setup]}) did not answer 200 within 10 s"
done
# Authentication really is in the path: a wrong password gets 401 from every TLS
# endpoint (nginx-bcrypt: libcrypt really reads htpasswd's \$2y\$), no client
# certificate gets no 200.
for setup in "${setups[@]:1}"; do
    status=$(fetch "$setup" /dev/null -u "$user:wrong-$password")
    [[ $status == 401 ]] || die "$setup answered $status to a wrong password, not 401"
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$certs/ca.crt" -u "$user:$password" "${url[$setup]}" || true)
    [[ $status != 200 ]] || die "$setup answered 200 without a client certificate"
done

# --- wrk's client certificate -----------------------------------------------------
shim=$work/wrk-client-cert.so
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$shim" "$root/bench/wrk-client-cert.c" -ldl -lssl -lcrypto
wrk_tls=(env LD_PRELOAD="$shim" WRK_CLIENT_CERT="$certs/client.crt" WRK_CLIENT_KEY="$certs/client.key")
# wrk_run OUTFILE SETUP DURATION CONNECTIONS [tls|plain]
wrk_run() {
    local prefix=()
    [[ ${5:-tls} == plain ]] || prefix=("${wrk_tls[@]}")
    "${prefix[@]+"${prefix[@]}"}" "$wrk" -t1 -c"$4" -d"$3" --timeout 30s --latency -H "$auth_header" "${url[$2]}" >"$1" 2>&1 || true
}
# wrk_summary FILE: requests/s p50_ms p99_ms requests errors non_2xx
wrk_summary() {
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
unit_ms = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
def ms(value):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    return float(m[1]) * unit_ms[m[2]] if m else float("nan")
latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
requests = re.search(r"^\s+(\d+) requests in", text, re.M)
sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(float(rps[1]) if rps else 0.0,
      ms(latency.get("50", "")), ms(latency.get("99", "")),
      int(requests[1]) if requests else 0,
      sum(map(int, sockets.groups())) if sockets else 0,
      int(non2xx[1]) if non2xx else 0)
PY
}
# With the shim, wrk's requests succeed over mTLS; without it, none does.
wrk_run "$work/wrk/shim-with.txt" sg-pass 1s 1
read -r _ _ _ requests errors non2xx < <(wrk_summary "$work/wrk/shim-with.txt")
((requests > 0 && errors == 0 && non2xx == 0)) ||
    { cat "$work/wrk/shim-with.txt" >&2; die "wrk with the client-certificate shim did not get through"; }
wrk_run "$work/wrk/shim-without.txt" sg-pass 1s 1 plain
read -r _ _ _ requests errors non2xx < <(wrk_summary "$work/wrk/shim-without.txt")
((requests == 0 || non2xx == requests)) ||
    { cat "$work/wrk/shim-without.txt" >&2; die "wrk without a client certificate got through: is client auth on?"; }

# --- s_time: full handshakes with the client certificate ---------------------------
# -new: no session reuse, every connection is a full handshake. -www fetches a page
# after the handshake (a 401: no credentials), so each connection waits for the
# server's answer, which comes only after it has verified the client's certificate
# (in TLS 1.3 the client's certificate travels after the client considers the
# handshake done).
# s_time_run OUTFILE PORT SECONDS [no-cert]
# s_time reports whole seconds of wall time (and CPU seconds of its own): the wall
# time is taken here instead, and appended to OUTFILE.
s_time_run() {
    local cert=(-cert "$certs/client.crt" -key "$certs/client.key") start=$EPOCHREALTIME
    [[ ${4:-} == no-cert ]] && cert=()
    openssl s_time -connect "127.0.0.1:$2" -new -www /metrics -CAfile "$certs/ca.crt" -verify 1 \
        "${cert[@]+"${cert[@]}"}" -time "$3" >"$1" 2>&1 || true
    echo "wall seconds: $start $EPOCHREALTIME" >>"$1"
}
# s_time_rate FILE RESPONSE_BYTES: connections per wall second, and the share of the
# connections that read a whole answer (s_time counts a connection as soon as its
# handshake is done, from the client's side, even when the server then refuses it).
s_time_rate() {
    python3 - "$1" "$2" <<'PY'
import re, sys
text, expected = open(sys.argv[1]).read(), int(sys.argv[2])
total = re.search(r"(\d+) connections in [\d.]+s;.*bytes read (\d+)", text)
wall = re.search(r"wall seconds: ([\d.]+) ([\d.]+)", text)
if not (total and wall and int(total[1])):
    print(0, 0)
else:
    connections, seconds = int(total[1]), float(wall[2]) - float(wall[1])
    print(f"{connections / seconds:.1f}", f"{int(total[2]) / (connections * expected):g}")
PY
}
# What s_time's connections get: with the certificate, both servers accept it and
# answer 401 (no password sent); that answer's size tells whether every counted
# connection got one. Without the certificate, nginx completes the handshake and
# answers 400 (its design); scrapeguard refuses, and s_time still counts those
# connections but reads nothing: that is checked here too.
declare -A answer_bytes=()
for port in "$apr1_port" "$pass_port"; do
    printf 'GET /metrics HTTP/1.0\r\n\r\n' | openssl s_client -quiet -connect "127.0.0.1:$port" \
        -cert "$certs/client.crt" -key "$certs/client.key" -CAfile "$certs/ca.crt" >"$work/s_client.txt" 2>/dev/null || true
    status_line=$(head -n 1 "$work/s_client.txt" | tr -d '\r')
    [[ $status_line == "HTTP/1."?" 401"* ]] || die "port $port answered '$status_line' to s_client with the client certificate, not 401"
    answer_bytes[$port]=$(stat -c %s "$work/s_client.txt")
done
s_time_run "$work/s_time-check.txt" "$pass_port" 1 no-cert
read -r _ answered < <(s_time_rate "$work/s_time-check.txt" "${answer_bytes[$pass_port]}")
[[ $answered == 0 ]] ||
    { cat "$work/s_time-check.txt" >&2; die "s_time without a client certificate got answers from scrapeguard"; }

# --- the measurements -----------------------------------------------------------------
results=$work/results.tsv
: >"$results"
rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
nginx_workers_rss_kib() { # the sum over the proxy's workers
    local total=0 pid
    for pid in $(pgrep -P "$proxy_pid"); do total=$((total + $(rss_kib "$pid"))); done
    echo "$total"
}
# CPU accounting, in clock ticks: our servers (nginx masters and workers, the
# gateways), the commands this script ran and waited for (wrk, s_time, curl), and the
# whole machine, so that the report can say how much went to other processes.
server_pids() { echo "$up_pid" "$proxy_pid" "${sg_pid[@]}" $(pgrep -P "$up_pid") $(pgrep -P "$proxy_pid"); }
ticks_of() { # ticks_of PID...: their user and system time summed
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
server_ticks() { ticks_of $(server_pids); }
# proxy_pids SETUP: the processes of the proxy under test (none for direct).
proxy_pids() {
    case $1 in
    direct) ;;
    nginx-*) echo "$proxy_pid" $(pgrep -P "$proxy_pid") ;;
    sg-*) echo "${sg_pid[${1#sg-}]}" ;;
    esac
}
# read_children_ticks: sets children_ticks from bash's `times`, whose second line is the
# waited-for children's user and system time. `times` must run in this shell, not in a
# command substitution's subshell (whose children are none of these).
read_children_ticks() {
    times >"$work/times.txt"
    children_ticks=$(awk -v hz="$(getconf CLK_TCK)" 'NR == 2 {
        n = split($0, t, " "); total = 0
        for (i = 1; i <= n; i++) { split(t[i], ms, /[ms]/); total += ms[1] * 60 + ms[2] }
        printf "%d\n", total * hz }' "$work/times.txt")
}
# Busy ticks but softirq (the kernel's packet processing, loopback included: this
# run's own traffic), which softirq_ticks counts apart. With tick-based accounting (no
# CONFIG_IRQ_TIME_ACCOUNTING), a tick spent in softirq is also charged to the process
# it interrupted: softirq overlaps the processes' system time.
machine_busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $9}' /proc/stat; }
softirq_ticks() { awk '/^cpu / {print $8}' /proc/stat; }
# settle: wait (at most 20 s) until the servers are idle, so that a scrape abandoned
# by the end of the previous row does not run into the next one.
settle() {
    local before after
    for _ in $(seq 40); do
        before=$(server_ticks)
        sleep 0.5
        after=$(server_ticks)
        ((after - before <= 2)) && return 0
    done
    echo "compare: warning: the servers did not settle within 20 s" >&2
}
settle
read_children_ticks
busy_start=$(machine_busy_ticks) servers_start=$(server_ticks) children_start=$children_ticks wall_start=$EPOCHREALTIME
softirq_start=$(softirq_ticks)

# Handshakes first, on idle servers.
tls_version=$(openssl s_client -brief -connect "127.0.0.1:$pass_port" -cert "$certs/client.crt" -key "$certs/client.key" \
    -CAfile "$certs/ca.crt" </dev/null 2>&1 | sed -n 's/^Protocol version: //p' | head -n 1 || true)
echo "compare: openssl s_time -new -www /metrics, ${handshake_time}s per server, ${tls_version:-TLS version unknown}"
for setup in nginx-apr1 sg-pass; do
    port=${url[$setup]#https://127.0.0.1:}
    port=${port%%/*}
    settle
    s_time_run "$work/s_time-$setup.txt" "$port" "$handshake_time"
    read -r rate answered < <(s_time_rate "$work/s_time-$setup.txt" "${answer_bytes[$port]}")
    printf '  %-13s %10s handshakes/s (%s of them answered)\n' "$setup" "$rate" "$answered"
    printf 'handshake\t%s\t%s\t%s\n' "$setup" "$rate" "$answered" >>"$results"
done

echo "compare: wrk -t1 -c$connections -d$duration per row; ${#sizes[@]} sizes x ${#setups[@]} setups"
for series in "${sizes[@]}"; do
    ln -sfn "body-$series.txt" "$work/current.txt"
    body_bytes=$(stat -L -c %s "$work/current.txt")
    for setup in "${setups[@]}"; do
        settle
        # A checked scrape first: status, body and filtering as expected.
        response=$work/response.txt
        status=$(fetch "$setup" "$response" -u "$user:$password")
        [[ $status == 200 ]] || { show_log "$(log_of "$setup")"; die "$setup at $series series answered $status"; }
        bytes=$(stat -c %s "$response")
        samples=$(grep -vc '^#' "$response" || true)
        case $setup in
        direct | nginx-* | sg-pass)
            cmp -s "$response" "$work/current.txt" || die "$setup at $series series did not pass the body through unchanged"
            ;;
        sg-pii)
            ((samples == series)) || die "sg-pii at $series series served $samples series"
            ! grep -q '@example.com' "$response" || die "sg-pii at $series series let an e-mail address through"
            ;;
        sg-capped)
            ((samples > 0 && samples <= series)) || die "sg-capped at $series series served $samples series"
            ;;
        esac
        mode=tls
        [[ $setup == direct ]] && mode=plain
        printf '  %-7s %-13s ' "$series" "$setup"
        # Where the row's CPU went: the proxy under test, the upstream, wrk (a waited-for
        # child), and the kernel's packet processing (softirq, machine-wide).
        row_proxy=$(ticks_of $(proxy_pids "$setup")) row_up=$(ticks_of "$up_pid" $(pgrep -P "$up_pid"))
        read_children_ticks
        row_wrk=$children_ticks row_softirq=$(softirq_ticks)
        wrk_run "$work/wrk/$series-$setup.txt" "$setup" "$duration" "$connections" "$mode"
        read_children_ticks
        printf 'cpu\t%s\t%s\t%s\t%s\t%s\t%s\n' "$series" "$setup" "$(($(ticks_of $(proxy_pids "$setup")) - row_proxy))" \
            "$(($(ticks_of "$up_pid" $(pgrep -P "$up_pid")) - row_up))" "$((children_ticks - row_wrk))" \
            "$(($(softirq_ticks) - row_softirq))" >>"$results"
        read -r rps p50 p99 requests errors non2xx < <(wrk_summary "$work/wrk/$series-$setup.txt")
        printf '%10s scrapes/s  p50 %8s ms  p99 %8s ms  errors %s, non-2xx %s\n' "$rps" "$p50" "$p99" "$errors" "$non2xx"
        printf 'scrape\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$series" "$setup" "$body_bytes" "$bytes" "$samples" \
            "$rps" "$p50" "$p99" "$requests" "$errors" "$non2xx" >>"$results"
    done
    for policy in pass pii capped; do
        printf 'rss\t%s\tsg-%s\t%s\n' "$series" "$policy" "$(rss_kib "${sg_pid[$policy]}")" >>"$results"
    done
    printf 'rss\t%s\tnginx-workers\t%s\n' "$series" "$(nginx_workers_rss_kib)" >>"$results"
done
for setup in "${setups[@]}"; do
    kill -0 "${up_pid}" 2>/dev/null || die "the upstream nginx died during the run"
    [[ $setup == sg-* ]] && { kill -0 "${sg_pid[${setup#sg-}]}" 2>/dev/null || { show_log "$(log_of "$setup")"; die "$setup died during the run"; }; }
done
# Other processes' share of the machine while this measured (the servers' idle
# waits between rows included): what they took, this run did not get. Softirq is
# counted in the busy time here, since the processes' times hold the part of it that
# interrupted them; what is left is other processes, the kernel's own threads and the
# packet processing that interrupted none of ours.
read_children_ticks
other_ticks=$(($(machine_busy_ticks) + $(softirq_ticks) - busy_start - softirq_start - ($(server_ticks) - servers_start) - (children_ticks - children_start)))
wall_seconds=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$wall_start" "$EPOCHREALTIME")
softirq_share=$(python3 -c "import sys; t, w, hz, n = map(float, sys.argv[1:]); print(max(0, round(100 * t / hz / w / n)))" \
    "$(($(softirq_ticks) - softirq_start))" "$wall_seconds" "$(getconf CLK_TCK)" "$(nproc)")
other_share=$(python3 -c "import sys; t, w, hz, n = map(float, sys.argv[1:]); print(round(100 * t / hz / w / n))" \
    "$other_ticks" "$wall_seconds" \
    "$(getconf CLK_TCK)" "$(nproc)")

# --- the report -------------------------------------------------------------------
machine="$(nproc) cores, $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release), $("$nginx" -v 2>&1 | sed 's/.*version: //'), $("$wrk" -v 2>&1 | awk 'NR==1 {print $1, $2}'), $(openssl version | awk '{print $1, $2}')"
CMP_TICKS_PER_SECOND=$(getconf CLK_TCK) CMP_CORES=$(nproc) CMP_COMMAND=$command_line CMP_MACHINE=$machine CMP_TLS=${tls_version:-?} CMP_CONNECTIONS=$connections CMP_OTHER_SHARE=$other_share CMP_SOFTIRQ_SHARE=$softirq_share \
    CMP_DURATION=$duration CMP_HANDSHAKE_TIME=$handshake_time CMP_BCRYPT_COST=$bcrypt_cost CMP_MEMO_BUDGET_KIB=$memo_budget_kib \
    python3 - "$results" "$out_file" <<'PY'
import collections, math, os, sys
results_file, out_file = sys.argv[1], sys.argv[2]
command_line = os.environ["CMP_COMMAND"]
settings = {k: os.environ["CMP_" + k.upper()] for k in ("connections", "duration", "handshake_time", "bcrypt_cost", "machine", "tls", "other_share", "softirq_share")}
MEMO_BUDGET_KIB = int(os.environ["CMP_MEMO_BUDGET_KIB"])  # filter.memo_budget (--memo-budget, else the default)

TICKS_PER_SECOND, CORES = int(os.environ["CMP_TICKS_PER_SECOND"]), int(os.environ["CMP_CORES"])

scrapes, rss, handshakes, cpu = {}, collections.defaultdict(dict), {}, {}
for line in open(results_file):
    kind, *f = line.rstrip("\n").split("\t")
    if kind == "scrape":
        series, setup, body, out, samples, rps, p50, p99, requests, errors, non2xx = f
        scrapes[(int(series), setup)] = dict(body=int(body), out=int(out), samples=int(samples), rps=float(rps),
            p50=float(p50), p99=float(p99), requests=int(requests), errors=int(errors), non2xx=int(non2xx))
    elif kind == "rss":
        rss[int(f[0])][f[1]] = int(f[2])
    elif kind == "handshake":
        handshakes[f[0]] = (float(f[1]), float(f[2]))
    elif kind == "cpu":
        cpu[(int(f[0]), f[1])] = dict(zip(("proxy", "upstream", "wrk", "softirq"), map(int, f[2:6])))
sizes = sorted({s for s, _ in scrapes})
setups = ["direct", "nginx-apr1", "nginx-bcrypt", "sg-pass", "sg-pii", "sg-capped"]

def valid(row): return row["requests"] > 0 and row["errors"] == 0 and row["non2xx"] == 0
def ratio(a, b): return f"{a / b:.2f}x" if b > 0 else "-"
def num(v, digits=1): return "-" if math.isnan(v) else f"{v:.{digits}f}"
def mib(kib): return f"{kib / 1024:.1f}"

tables = []   # (title, header, rows, notes)
rows = []
for series in sizes:
    for setup in setups:
        r = scrapes.get((series, setup))
        if r is None: continue
        apr1, bcrypt = scrapes[(series, "nginx-apr1")], scrapes[(series, "nginx-bcrypt")]
        if valid(r):
            note = ""
        elif r["requests"] == 0:
            note = f"INVALID: no scrape finished within {settings['duration']} (a longer --duration)"
        else:
            note = f"INVALID: {r['errors']} socket errors, {r['non2xx']} non-2xx of {r['requests']}"
        measured = r["requests"] > 0
        rows.append([str(series), setup, f"{r['out'] / 1024:.0f}", str(r["samples"]),
                     num(r["rps"]) if measured else "-", num(r["p50"], 2) if measured else "-",
                     num(r["p99"], 2) if measured else "-",
                     ratio(r["rps"], apr1["rps"]) if measured else "-", ratio(r["rps"], bcrypt["rps"]) if measured else "-", note])
tables.append((f"Scrapes (wrk -t1 -c{settings['connections']} -d{settings['duration']}, keep-alive, --latency)",
               ["series", "setup", "KiB out", "series out", "scrapes/s", "p50 ms", "p99 ms", "vs nginx-apr1", "vs nginx-bcrypt", "note"],
               rows, []))
(hs_nginx, ans_nginx), (hs_sg, ans_sg) = handshakes.get("nginx-apr1", (0.0, 0.0)), handshakes.get("sg-pass", (0.0, 0.0))
def hs_note(answered): return "" if answered >= 0.99 else f"INVALID: only {answered:.0%} of the connections got an answer"
tables.append((f"Full handshakes (openssl s_time -new -www /metrics with the client certificate, one connection at a time, {settings['handshake_time']} s, {settings['tls']})",
               ["server", "handshakes/s", "vs nginx", "note"],
               [["nginx", num(hs_nginx), "1.00x", hs_note(ans_nginx)], ["scrapeguard", num(hs_sg), ratio(hs_sg, hs_nginx), hs_note(ans_sg)]], []))
# CPU per scrape, in ms, of each part of a row; and for each size, the most any proxy
# could reach on these cores were it free, with the rest costing what it cost in the
# nginx-apr1 row: the cores' time divided by the upstream's and wrk's CPU per scrape.
# Softirq is shown but not summed: its ticks that interrupted a process are in that
# process's time as well (tick-based accounting), so adding it would count them twice.
def per_scrape(row, part): return 1000 * cpu[row][part] / TICKS_PER_SECOND / scrapes[row]["requests"]
cpu_rows, ceilings = [], {}
for series in sizes:
    for setup in setups:
        row = (series, setup)
        if row not in cpu or not scrapes[row]["requests"]:
            continue
        parts = [per_scrape(row, part) for part in ("proxy", "upstream", "wrk", "softirq")]
        cpu_rows.append([str(series), setup] + [num(p, 2) for p in parts] + [num(sum(parts[:3]), 2)])
    row = (series, "nginx-apr1")
    if row in cpu and scrapes[row]["requests"] and valid(scrapes[row]):
        rest = sum(per_scrape(row, part) for part in ("upstream", "wrk"))
        ceilings[series] = (1000 * CORES / rest / scrapes[row]["rps"]) if rest > 0 else float("inf")
tables.append(("CPU per scrape in ms (the proxy under test, the upstream, wrk; the kernel's packet processing, softirq, machine-wide and in part inside the others: not in the sum)",
               ["series", "setup", "proxy", "upstream", "wrk", "softirq", "proxy+upstream+wrk"], cpu_rows, []))
rss_rows = [[str(s)] + [mib(rss[s].get(k, 0)) for k in ("sg-pass", "sg-pii", "sg-capped", "nginx-workers")] for s in sizes]
tables.append(("Peak RSS in MiB (VmHWM after each size's rows; the gateway: one process per policy; nginx: its workers summed)",
               ["series", "sg-pass", "sg-pii", "sg-capped", "nginx workers"], rss_rows, []))

goals = []
# The throughput issue's goals: the PII policy at least nginx-apr1's pure proxy and
# passing through at least 1.5x it, at 10k and 100k series; full handshakes at least
# nginx's; peak RSS at the largest size within the smallest's plus the memo budget
# (filter.memo_budget: --memo-budget, else the default) plus 4 MiB.
for size in (10000, 100000):
    label = f"{size // 1000}k series"
    if size not in sizes:
        goals.append((None, f"{label}: not measured ({size} is not among the sizes)"))
        continue
    apr1 = scrapes[(size, "nginx-apr1")]
    for setup, want in (("sg-pii", 1.0), ("sg-pass", 1.5)):
        r = scrapes[(size, setup)]
        ok = r["rps"] >= want * apr1["rps"] if valid(r) and valid(apr1) else None
        ceiling = (f"; a proxy that cost no CPU at all could reach at most {ceilings[size]:.2f}x here (the upstream and wrk as in the nginx-apr1 row)"
                   if setup == "sg-pass" and size in ceilings else "")
        goals.append((ok, f"{setup} at {label} at least {want:.1f}x nginx-apr1's pure proxy: {r['rps']:.1f} against {apr1['rps']:.1f} scrapes/s ({ratio(r['rps'], apr1['rps'])}){ceiling}"))
goals.append((hs_sg >= hs_nginx if hs_nginx > 0 and not hs_note(ans_nginx) and not hs_note(ans_sg) else None,
              f"handshakes/s at least nginx's: {hs_sg:.1f} against {hs_nginx:.1f} ({ratio(hs_sg, hs_nginx)})"))
first, last = sizes[0], sizes[-1]
for k in ("sg-pass", "sg-pii", "sg-capped"):
    a, b = rss[first].get(k, 0), rss[last].get(k, 0)
    if first == last:
        goals.append((None, f"peak RSS ({k}): needs two sizes"))
    else:
        bound = a + MEMO_BUDGET_KIB + 4 * 1024
        goals.append((a > 0 and b <= bound,
                      f"peak RSS at {last} series within that at {first} + the memo budget ({mib(MEMO_BUDGET_KIB)} MiB) + 4 MiB ({k}): {mib(a)} -> {mib(b)} MiB (bound {mib(bound)})"))

def verdict(ok): return "unknown" if ok is None else ("REACHED" if ok else "NOT reached")
notes = [
    f"Machine: {settings['machine']}. wrk (one thread), the upstream (nginx, one worker), the proxy under test "
    "(nginx: worker_processes auto; scrapeguard: one event loop per core, bcrypt on a pool of 2) share the cores.",
    f"Same upstream body for every row: bench/resources.sh --body N, served by nginx from a file. bcrypt cost {settings['bcrypt_cost']} "
    "for scrapeguard and nginx-bcrypt (htpasswd -B -C); nginx re-hashes on every request, scrapeguard caches the verdict.",
    "nginx does not check the client certificate's SAN (scrapeguard does: client_allowed_sans); nginx buffers large "
    "upstream bodies to proxy_temp files by default (left as is).",
    "sg-capped serves fewer series than it receives (values_per_label 1000, series_per_metric 5000): see 'series out'. "
    "Peak RSS is VmHWM, which only grows: each size's figure is the peak up to that size.",
    f"scrapeguard's series memo (filter.memo_budget): {mib(MEMO_BUDGET_KIB)} MiB per process"
    + (" (the default)." if MEMO_BUDGET_KIB == 16 * 1024 else " (--memo-budget)."),
]
other = int(settings["other_share"])
notes.append(f"CPU time not spent by this run's processes (other processes, the kernel's threads, a hypervisor's steal time, packet processing that interrupted none of them) was {other}% of the machine's while this measured "
             f"(the kernel's packet processing, softirq, was {settings['softirq_share']}%: loopback traffic is this run's own, and the part that interrupted a process is in that process's time too)."
             + (" WARNING: the machine was not quiet; these numbers are below a quiet machine's and not comparable with them."
                if other > 10 else ""))

def text_table(title, header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    def line(cells):  # names left, numbers right
        return "  ".join(str(c).ljust(w) if h in ("setup", "server", "note") else str(c).rjust(w)
                         for c, w, h in zip(cells, widths, header)).rstrip()
    return "\n".join([title, line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])

def md_table(title, header, rows):
    out = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)

text = [text_table(t, h, r) for t, h, r, _ in tables]
text.append("Goals\n" + "\n".join(f"  {verdict(ok):<12} {what}" for ok, what in goals))
text.append("Notes\n" + "\n".join(f"  - {n}" for n in notes))
text.append(f"Made by: {command_line}")
print()
print("\n\n".join(text))
if out_file:
    md = [md_table(t, h, r) for t, h, r, _ in tables]
    md.append("**Goals**\n\n" + "\n".join(f"- {verdict(ok)}: {what}" for ok, what in goals))
    md.append("Notes:\n\n" + "\n".join(f"- {n}" for n in notes))
    md.append(f"Made by `{command_line}`.")
    open(out_file, "w").write("\n\n".join(md) + "\n")
    print(f"\n(markdown written to {out_file})")
PY
