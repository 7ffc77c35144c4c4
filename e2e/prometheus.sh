#!/usr/bin/env bash
# End to end with a real Prometheus server (Debian's `prometheus`), all on loopback:
#
#   app (prometheus_client, e2e/helper.py) --HTTP--> scrapeguard serve --HTTPS, mTLS,
#   basic auth--> prometheus (4 jobs, the recording rules from deploy/ loaded)
#
# The gateway runs with the shipped policy, deploy/base/config/scrapeguard.yml, as it
# is (only upstream.url is overridden on the command line). Checked through
# Prometheus's HTTP API, one PASS/FAIL line each, then a summary line:
#   - the app's own output has e-mails, IPv4 addresses and session ids in label
#     values, and one metric with more series than the policy's series_per_metric
#   - job `gateway` (good certificate and password) is up, after several scrapes
#   - job `gateway-wrong-san` (a client certificate from the same CA whose SAN is
#     not in client_allowed_sans) is down with a TLS alert from the gateway, which
#     counts it as "client certificate SAN not allowed"
#   - job `gateway-wrong-password` is down with "401 Unauthorized"; the gateway
#     counts it as wrong_password
#   - no label value of any series Prometheus stored carries an e-mail address, an
#     IPv4 address (but the target's own instance label) or one of the session ids;
#     the app's series are there, redacted
#   - the capped metric has exactly the cap's number of series (the first ones, never
#     any other); scrapeguard_filter_series_dropped_total equals the excess times
#     the successful scrapes
#   - every recording rule of deploy/base/prometheusrule.yaml (extracted with
#     deploy/tools/bundle_checks.py as deploy/test.sh does) produces a series
#   - SIGTERM while Prometheus is in the middle of a scrape (the app holds the second
#     half of its body for a while): the gateway exits 0 after that scrape and within
#     --web.shutdown-timeout, Prometheus stored that scrape as up with the full
#     sample count, and every later scrape failed with "connection refused" (no EOF,
#     no reset: nothing was cut mid-body)
#
# Usage: e2e/prometheus.sh            (make test-e2e; make test runs it)
# Environment:
#   SCRAPEGUARD_BIN   the binary (default .build/debug/scrapeguard)
#   E2E_STOP_SIGNAL   the signal for the drain check (default TERM; KILL shows
#                     that the check fails when a scrape is cut)
#   E2E_KEEP          1 = keep the work folder (logs, configs, TSDB) and say where
# Needs: prometheus + promtool, openssl, curl, .venv-test (prometheus_client, PyYAML):
# installed by scripts/install-deps.sh test when missing.
set -euo pipefail

e2e_name=e2e
e2e_logs=(prometheus.log gateway.log app.log)
# shellcheck source=e2e/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
stop_signal=${E2E_STOP_SIGNAL:-TERM}
policy=$repo/deploy/base/config/scrapeguard.yml

# The gateway job scrapes every 3 s with a 3 s timeout (the gateway gives the app
# 10% less); in the drain check the app holds half its body for 2 s.
gateway_interval=3
slow=2
shutdown_timeout=10
extra_series=150

# ------------------------------------------------------------------ tools
need "setup: prometheus, promtool, venv, binary" setup_tools "prometheus_client, yaml"

# ------------------------------------------------------------------ configuration
read -r app_port gw_port health_port prom_port <<<"$("$py" "$helper" free-ports 4)"
prom=http://127.0.0.1:$prom_port
gw_instance=127.0.0.1:$gw_port

need "dev PKI (gen-dev-certs.sh --test-extras)" setup_certs

setup_configs() {
    write_web_config
    printf 'not-the-password' >"$work/wrong-password"
    # The shipped policy, unchanged; the app's address comes from --upstream.url.
    cp "$policy" "$work/scrapeguard.yml"
    "$bin" check-config --web.config.file="$work/web-config.yml" --config.file="$work/scrapeguard.yml"
}
need "check-config: web-config + deploy's scrapeguard.yml" setup_configs
cap=$("$py" "$helper" cap "$work/scrapeguard.yml")
app_series=$((cap + extra_series))

# The recording rules exactly as deploy/test.sh gets them: the base rendered by
# kubectl kustomize, spec.groups extracted by bundle_checks.py. Without a kubectl
# that has kustomize v5, from the PrometheusRule's source file (kustomize changes
# only its metadata). Then every group evaluated each second instead of every 30 s.
setup_rules() {
    local k='' v src
    if command -v kubectl >/dev/null 2>&1; then
        v=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
        [[ ${v:-0} -ge 5 ]] && k=$(command -v kubectl)
    fi
    [[ -n $k || ! -x $repo/.venv-deploy/bin/kubectl ]] || k=$repo/.venv-deploy/bin/kubectl
    if [[ -n $k ]]; then
        "$k" kustomize "$repo/deploy/base" >"$work/base.yaml"
        src="kubectl kustomize deploy/base"
    else
        cp "$repo/deploy/base/prometheusrule.yaml" "$work/base.yaml"
        src="deploy/base/prometheusrule.yaml (no kubectl with kustomize v5)"
    fi
    "$py" "$repo/deploy/tools/bundle_checks.py" rules "$work/base.yaml" "$work/rules-deploy.yml"
    "$py" "$helper" rules "$work/rules-deploy.yml" "$work/rules.yml"
    promtool check rules "$work/rules.yml" >/dev/null
    echo "$("$py" "$helper" rules "$work/rules-deploy.yml" "$work/rules.yml"), from $src"
}
need "recording rules from deploy/ (bundle_checks.py rules)" setup_rules

setup_prometheus_config() {
    {
        printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n'
        printf 'rule_files:\n  - %s\n' "$work/rules.yml"
        printf 'scrape_configs:\n'
        prom_job gateway client password /metrics "${gateway_interval}s"
        # The gateway's own metrics under the job name deploy/'s rules and alerts use.
        prom_job scrapeguard client password /gateway/metrics
        prom_job gateway-wrong-san client-wrong-san password
        prom_job gateway-wrong-password client wrong-password
    } >"$work/prometheus.yml"
    promtool check config "$work/prometheus.yml" 2>&1 | grep SUCCESS
}
need "prometheus.yml (4 jobs over mTLS, rules)" setup_prometheus_config

# ------------------------------------------------------------------ processes
start_app() {
    "$py" "$helper" app "$app_port" "$work/app.log" "$work/slow" "$app_series" >"$work/app.out" 2>&1 &
    pids+=($!)
    wait_for 10 curl -fsS -o /dev/null "http://127.0.0.1:$app_port/metrics" || { cat "$work/app.out"; return 1; }
    echo "app on 127.0.0.1:$app_port"
}
start_step "app (prometheus_client) on loopback" start_app

start_step "scrapeguard serve (deploy's policy)" start_gateway --web.shutdown-timeout="${shutdown_timeout}s"

start_time=$(date +%s)
start_step "prometheus server" start_prometheus prometheus.yml tsdb prometheus.log "$prom_port"

# ------------------------------------------------------------------ checks
# The PII check proves something only if the app really serves PII.
app_raw() {
    curl -fsS "http://127.0.0.1:$app_port/metrics" >"$work/app-body.txt"
    local n
    n=$(grep -c '^app_cart_items{' "$work/app-body.txt")
    ((n == app_series)) || { echo "the app serves $n series of app_cart_items, expected $app_series"; return 1; }
    "$py" "$helper" app-raw "$work/app-body.txt" | sed "s/\$/, $n series of app_cart_items (cap $cap)/"
}
check "the app's raw output has PII and exceeds the cap" app_raw

check "target gateway: up after 3 scrapes" "$py" "$helper" wait-up "$prom" gateway 3 40

target_is() { # POOL HEALTH ERROR_REGEX
    local got health err
    got=$("$py" "$helper" target "$prom" "$1" 20)
    health=${got%%$'\t'*}
    err=${got#*$'\t'}
    echo "health=$health lastError=\"$err\""
    [[ $health == "$2" ]] || return 1
    [[ -n $3 ]] || [[ -z $err ]] || return 1
    [[ -z $3 ]] || grep -Eq "$3" <<<"$err"
}
check "target gateway: health up, no error" target_is gateway up ""
check "target scrapeguard (/gateway/metrics): up" target_is scrapeguard up ""

# refused JOB ERROR_REGEX COUNTER DESCRIPTION: the job's target is down with that
# error, and the gateway's own counter says it refused that many for that reason.
refused() {
    local job=$1 error=$2 counter=$3 what=$4 n
    target_is "$job" down "$error"
    n=$("$py" "$helper" value "$prom" "$counter")
    echo "gateway counted $n: $what"
    [[ $n != 0 ]]
    "$py" "$helper" target "$prom" "$job" 1 | cut -f2 | sed "s/\$/; gateway: $n x $what/"
}
# A client certificate from the right CA with a SAN outside client_allowed_sans: the
# gateway fails the handshake with a bad_certificate alert, as exporter-toolkit does
# (Go reports `remote error: tls: bad certificate`, after `readLoopPeekFailLocked: `
# when the alert arrives before the request is sent).
check "target gateway-wrong-san: down, TLS alert" refused gateway-wrong-san \
    '^Get "https://[^"]+": (readLoopPeekFailLocked: )?remote error: tls: bad certificate$' \
    'scrapeguard_tls_handshake_failures_total{reason="client certificate SAN not allowed"}' "'client certificate SAN not allowed'"
check "target gateway-wrong-password: down, 401" refused gateway-wrong-password \
    '^server returned HTTP status 401 Unauthorized$' \
    'scrapeguard_auth_failures_total{reason="wrong_password"}' wrong_password

check "no e-mail, IPv4 or session id in any stored series" "$py" "$helper" pii "$prom" "$start_time" "$gw_instance"
check "series beyond the cap never reach Prometheus" "$py" "$helper" cap-check "$prom" "$cap" "$app_series" "$start_time"
check "the gateway counts the dropped series" "$py" "$helper" dropped "$prom" "$cap" "$app_series"
check "every recording rule from deploy/ produces series" "$py" "$helper" records "$prom" "$work/rules.yml" 30

# ------------------------------------------------------------------ drain
# Make the app hold the second half of its body for $slow seconds, wait until the
# gateway job's next scrape has reached the app, then signal the gateway.
drain_signal() {
    local before t_term t_exit rc
    before=$(wc -l <"$work/app.log")
    echo "$slow" >"$work/slow"
    for _ in $(seq $(((gateway_interval + 5) * 20))); do
        tail -n +$((before + 1)) "$work/app.log" | grep -q " start .* slow=$slow " && break
        sleep 0.05
    done
    tail -n +$((before + 1)) "$work/app.log" | grep -q " start .* slow=$slow " ||
        { echo "no slow scrape reached the app within $((gateway_interval + 5)) s"; return 1; }
    t_term=$(now)
    kill -"$stop_signal" "$gw_pid"
    rm -f "$work/slow"
    for _ in $(seq $(((shutdown_timeout + 5) * 20))); do
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.05
    done
    t_exit=$(now)
    if kill -0 "$gw_pid" 2>/dev/null; then echo "still running $((shutdown_timeout + 5)) s after SIG$stop_signal"; return 1; fi
    rc=0
    wait "$gw_pid" || rc=$?
    echo "$t_term" >"$work/t_term"
    echo "SIG$stop_signal at $t_term, exit status $rc after $(awk -v a="$t_term" -v b="$t_exit" 'BEGIN{printf "%.2f", b-a}') s"
    ((rc == 0)) || return 1
    awk -v a="$t_term" -v b="$t_exit" -v t="$shutdown_timeout" 'BEGIN{exit !(b - a <= t)}' ||
        { echo "took longer than --web.shutdown-timeout=${shutdown_timeout}s"; return 1; }
    # It waited for the scrape in flight: the app finished that body before the exit.
    local t_end
    t_end=$(awk '$2 == "end" {t = $1} END {print t}' "$work/app.log")
    awk -v e="$t_end" -v b="$t_exit" -v a="$t_term" 'BEGIN{exit !(e > a && e <= b)}' ||
        { echo "the app's last response ended at $t_end, not between SIGTERM and the exit"; return 1; }
    echo "SIG$stop_signal during a scrape: exit 0 after $(awk -v a="$t_term" -v b="$t_exit" 'BEGIN{printf "%.2f", b-a}') s (limit ${shutdown_timeout} s), after the app's body ended"
}
# Not in a subshell: it waits for the gateway, a child of this shell.
rc=0
drain_signal >"$work/step.out" 2>&1 || rc=$?
left=()
for p in "${pids[@]}"; do [[ $p == "$gw_pid" ]] || left+=("$p"); done
pids=("${left[@]}")
if ((rc == 0)); then pass "SIG$stop_signal mid-scrape: gateway drains, exits 0" "$(tail -n 1 "$work/step.out")"; else fail "SIG$stop_signal mid-scrape: gateway drains, exits 0" "$(cat "$work/step.out")"; fi

if [[ -f $work/t_term ]]; then
    check "the scrape in flight at SIG$stop_signal is stored whole" \
        "$py" "$helper" drain "$prom" "$work/app.log" "$(cat "$work/t_term")" "$slow"

    scrape_errors() {
        local lines bad
        lines=$(grep -E 'scrape_pool=(gateway|scrapeguard) .*msg="Scrape failed"' "$work/prometheus.log" || true)
        [[ -n $lines ]] || { echo "no failed scrape logged"; return 1; }
        bad=$(grep -v 'connect: connection refused' <<<"$lines" || true)
        if [[ -n $bad ]]; then
            echo "scrapes failed otherwise than 'connection refused' (cut or refused mid-way):"
            echo "$bad"
            return 1
        fi
        echo "$(wc -l <<<"$lines") failed scrapes of gateway/scrapeguard logged, all 'connection refused': none cut"
    }
    check "Prometheus log: only 'connection refused' after it" scrape_errors
fi

summary
((failed == 0))
