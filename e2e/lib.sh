# Shared by the end-to-end scripts (e2e/prometheus.sh, e2e/native_histograms.sh):
# sourced, never run. Each script sets, before sourcing it:
#   e2e_name    what its summary line starts with ("e2e: 21 passed, 0 failed (30 s)")
#   e2e_logs    the files in $work whose last 40 lines are shown when anything failed
# and gets from it:
#   repo, bin (SCRAPEGUARD_BIN, default .build/debug/scrapeguard), py (.venv-test's
#   python), helper (e2e/helper.py), server_name (the gateway certificate's name)
#   work        a fresh folder for configs, logs and TSDBs, removed on exit unless
#               E2E_KEEP=1 (then it says where it is)
#   pids        processes to stop on exit (TERM, then KILL after 3 s): append to it
#   the helpers below: say, pass, fail, check, need, start_step, summary, wait_for,
#   stop_pid, now, setup_tools, setup_certs, write_web_config, prom_job,
#   start_gateway, launch_prometheus, prometheus_ready, start_prometheus
# Exit: the trap stops every process in pids, shows the logs if a check failed or the
# script exits non-zero, and removes the work folder.
# Environment: SCRAPEGUARD_BIN, E2E_KEEP, TMPDIR.

e2e_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$e2e_dir/.." && pwd)
bin=${SCRAPEGUARD_BIN:-$repo/.build/debug/scrapeguard}
py=$repo/.venv-test/bin/python
helper=$e2e_dir/helper.py
server_name=my-custom-exporter # the ServiceMonitor's serverName, as deploy/ uses it

passed=0
failed=0
pids=()
t0=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/e2e-$(basename -- "$0" .sh).XXXXXX")

say() { printf '%s\n' "$*"; }

stop_pid() { # PID: TERM, then KILL after 3 s
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

show_logs() {
    local f
    for f in "${e2e_logs[@]}"; do
        [[ -s $work/$f ]] || continue
        say "---- last 40 lines of $f"
        tail -n 40 "$work/$f" | cut -c1-400 | sed 's/^/    /'
    done
}

cleanup() {
    local rc=$? pid
    for pid in "${pids[@]+"${pids[@]}"}"; do stop_pid "$pid"; done
    if ((failed || rc)); then show_logs; fi
    if [[ ${E2E_KEEP:-0} == 1 ]]; then say "work folder kept: $work"; else rm -rf -- "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { passed=$((passed + 1)); printf 'PASS  %-52s %s\n' "$1" "$2"; }
fail() {
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$1"
    [[ -z ${2:-} ]] || printf '%s\n' "$2" | sed 's/^/      /'
}

# check NAME COMMAND...: PASS with the command's last line, or FAIL with its output.
check() {
    local name=$1 out rc
    shift
    set +e
    out=$( (set -e; "$@") 2>&1)
    rc=$?
    set -e
    if ((rc == 0)); then pass "$name" "$(tail -n 1 <<<"$out" | cut -c1-200)"; else fail "$name (exit $rc)" "$out"; fi
    return 0
}

# A setup step that must work for anything after it to mean something.
need() {
    local name=$1 out
    shift
    if out=$( (set -e; "$@") 2>&1); then
        pass "$name" "$(tail -n 1 <<<"$out" | cut -c1-160)"
    else
        fail "$name" "$out"
        summary
        exit 1
    fi
}

# start_step NAME FUNCTION [ARGS...]: like need, but in this shell, so that the
# processes the function starts (and their pids) outlive it.
start_step() {
    if "${@:2}" >"$work/step.out" 2>&1; then
        pass "$1" "$(tail -n 1 "$work/step.out")"
    else
        fail "$1" "$(cat "$work/step.out")"
        summary
        exit 1
    fi
}

summary() { say "$e2e_name: $passed passed, $failed failed ($((SECONDS - t0)) s)"; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

now() { date +%s.%N | cut -c1-14; }

# setup_tools PY_MODULES [COMMAND...]: prometheus, promtool, openssl, curl, the
# commands named and .venv-test with the modules named ("prometheus_client, yaml"),
# installed by scripts/install-deps.sh test when any is missing; and the binary.
setup_tools() {
    local modules=$1 tool missing=0
    shift
    for tool in prometheus promtool openssl curl "$@"; do
        command -v "$tool" >/dev/null || missing=1
    done
    "$py" -c "import $modules" 2>/dev/null || missing=1
    if ((missing)); then
        bash "$repo/scripts/install-deps.sh" test
    fi
    [[ -x $bin ]] || { echo "SCRAPEGUARD_BIN=$bin is not an executable"; return 1; }
    echo "$(prometheus --version 2>&1 | head -n 1); $bin"
}

# The dev PKI in $work/certs: CA, server certificate for $server_name, client
# certificates (client: the allowed SAN; client-wrong-san: another).
setup_certs() {
    bash "$repo/certs/gen-dev-certs.sh" --test-extras "$work/certs" "$server_name" >/dev/null
    openssl x509 -in "$work/certs/server.crt" -noout -ext subjectAltName | tail -n 1 | sed 's/^ *//'
}

# $work/password (random) and $work/web-config.yml: TLS 1.3 with a client certificate
# from the dev CA whose SAN is Prometheus's, and basic auth for user prometheus.
write_web_config() {
    openssl rand -hex 16 | tr -d '\n' >"$work/password"
    local hash
    hash=$("$bin" hash-password <"$work/password")
    cat >"$work/web-config.yml" <<EOF
tls_server_config:
  cert_file: certs/server.crt
  key_file: certs/server.key
  client_ca_file: certs/ca.crt
  client_auth_type: RequireAndVerifyClientCert
  client_allowed_sans:
    - spiffe://cluster.local/ns/monitoring/sa/prometheus
basic_auth_users:
  prometheus: $hash
EOF
}

# prom_job NAME CLIENT_CERT PASSWORD_FILE [PATH] [INTERVAL]: a scrape job of the
# gateway at $gw_instance over mTLS and basic auth, as a prometheus.yml fragment.
prom_job() {
    cat <<EOF
  - job_name: $1
    scheme: https
    metrics_path: ${4:-/metrics}
    scrape_interval: ${5:-1s}
    scrape_timeout: ${5:-1s}
    tls_config:
      ca_file: $work/certs/ca.crt
      cert_file: $work/certs/$2.crt
      key_file: $work/certs/$2.key
      server_name: $server_name
      min_version: TLS13
    basic_auth:
      username: prometheus
      password_file: $work/$3
    static_configs:
      - targets: ["$gw_instance"]
EOF
}

# start_gateway [FLAGS...]: scrapeguard serve with $work/web-config.yml and
# $work/scrapeguard.yml in front of the app on $app_port, on $gw_instance (health on
# $health_port), logging to $work/gateway.log; sets gw_pid; ready within 20 s.
start_gateway() {
    "$bin" serve --web.config.file="$work/web-config.yml" --config.file="$work/scrapeguard.yml" \
        --upstream.url="http://127.0.0.1:$app_port/metrics" \
        --web.listen-address="$gw_instance" --health.listen-address="127.0.0.1:$health_port" \
        "$@" --log.level=info >"$work/gateway.log" 2>&1 &
    gw_pid=$!
    pids+=("$gw_pid")
    wait_for 20 curl -fsS -o /dev/null "http://127.0.0.1:$health_port/readyz" || { echo "not ready in 20 s"; return 1; }
    echo "scrapeguard serve on $gw_instance, ready"
}

# launch_prometheus CONFIG TSDB LOG PORT [FLAGS...]: prometheus with $work/CONFIG,
# storage in $work/TSDB, debug log in $work/LOG, on 127.0.0.1:PORT; not waited for.
launch_prometheus() {
    local config=$1 tsdb=$2 log=$3 port=$4
    shift 4
    prometheus --config.file="$work/$config" --storage.tsdb.path="$work/$tsdb" \
        --web.listen-address="127.0.0.1:$port" --log.level=debug "$@" >"$work/$log" 2>&1 &
    pids+=($!)
}

# prometheus_ready PORT: ready within 30 s.
prometheus_ready() {
    wait_for 30 curl -fsS -o /dev/null "http://127.0.0.1:$1/-/ready" || { echo "not ready in 30 s"; return 1; }
    echo "prometheus on 127.0.0.1:$1, ready"
}

# start_prometheus CONFIG TSDB LOG PORT [FLAGS...]: launch_prometheus, prometheus_ready.
start_prometheus() {
    launch_prometheus "$@"
    prometheus_ready "$4"
}
