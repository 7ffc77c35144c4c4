#!/usr/bin/env bash
# Native histograms end to end: the protobuf exposition through the gateway into two
# real Prometheus servers (Debian's 2.42), all on loopback:
#
#   app (Tests/Support/protobuf_exposition.py serve: protobuf or text 0.0.4, as the
#   Accept asks) --HTTP--> scrapeguard serve --HTTPS, mTLS, basic auth--> prometheus
#   "native" (--enable-feature=native-histograms: asks protobuf first) and prometheus
#   "classic" (no feature: asks OpenMetrics, then text)
#
# The gateway's policy drops the label user_id and redacts e-mail addresses in label
# values; each Prometheus passes ?scraper=native or ?scraper=classic, which the gateway
# passes on (upstream.allowed_query_params), so the app's request log tells whose
# Accept it got. Checked through Prometheus's HTTP API, one PASS/FAIL line each, then
# a summary line "native histograms e2e: N passed, M failed":
#   - the app's own output carries user_id and an e-mail address, in both formats; the
#     gateway answers protobuf to Prometheus's native-histogram Accept, text otherwise
#   - native: up after 3 scrapes; the native-only histogram rpc_latency_seconds and the
#     classic+native grpc_server_handling_seconds are stored as native histograms
#     (histogram_count, histogram_sum give the app's values)
#   - classic: up after 3 scrapes; rpc_latency_seconds arrived as text: its _count and
#     _bucket{le="+Inf"} are float series, histogram_count(...) gives nothing
#   - both: no stored series has user_id or an e-mail address in a label value;
#     http_requests_total{customer="redacted"} is there
#   - the app's request log: the native scraper's requests asked for protobuf and got
#     it, the classic one's asked for no protobuf and got text
#
# Usage: e2e/native_histograms.sh   (make test-e2e; make test runs it)
# Environment:
#   SCRAPEGUARD_BIN   the binary (default .build/debug/scrapeguard)
#   E2E_KEEP          1 = keep the work folder (logs, configs, TSDBs) and say where
# Needs: prometheus + promtool, openssl, curl, protoc, .venv-test (protobuf):
# installed by scripts/install-deps.sh test when missing.
set -euo pipefail

e2e_name="native histograms e2e"
e2e_logs=(prometheus-native.log prometheus-classic.log gateway.log app.out app-requests.log)
# shellcheck source=e2e/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
app=$repo/Tests/Support/protobuf_exposition.py
protobuf_clause="application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
# What Prometheus 2.42 sends with native histograms on, and without.
accept_native="$protobuf_clause,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
accept_classic="application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

# ------------------------------------------------------------------ tools
need "setup: prometheus, promtool, protoc, venv, binary" setup_tools google.protobuf protoc

# ------------------------------------------------------------------ configuration
read -r gw_port health_port native_port classic_port <<<"$("$py" "$helper" free-ports 4)"
native=http://127.0.0.1:$native_port
classic=http://127.0.0.1:$classic_port
gw_instance=127.0.0.1:$gw_port

need "dev PKI (gen-dev-certs.sh --test-extras)" setup_certs

setup_configs() {
    write_web_config
    cat >"$work/scrapeguard.yml" <<EOF
upstream:
  url: http://127.0.0.1:8000/metrics  # --upstream.url says where the app is
  allowed_query_params: [scraper]
pii:
  labels: [{names: [user_id], action: drop}]
  detectors: [{detector: email, action: redact}]
EOF
    "$bin" check-config --web.config.file="$work/web-config.yml" --config.file="$work/scrapeguard.yml"
}
need "check-config: web-config + policy (user_id, e-mail)" setup_configs

setup_prometheus_configs() { # one job each, passing ?scraper=JOB on to the app
    local job
    for job in native classic; do
        {
            printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n'
            prom_job "$job" client password
            printf '    params:\n      scraper: [%s]\n' "$job"
        } >"$work/prometheus-$job.yml"
        promtool check config "$work/prometheus-$job.yml" >/dev/null
    done
    echo "prometheus-native.yml, prometheus-classic.yml: SUCCESS"
}
need "prometheus configs (a job each, mTLS)" setup_prometheus_configs

# ------------------------------------------------------------------ processes
start_app() {
    "$py" "$app" serve 0 "$work/app-requests.log" >"$work/app.out" 2>&1 &
    pids+=($!)
    local pid=$! deadline=$((SECONDS + 20))
    until grep -q '^listening ' "$work/app.out"; do # it prints that once it listens
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
            cat "$work/app.out"
            echo "app not listening"
            return 1
        fi
        sleep 0.1
    done
    app_port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/app.out")
    [[ -n $app_port ]] || { cat "$work/app.out"; return 1; }
    echo "app on 127.0.0.1:$app_port"
}
start_step "app (protobuf_exposition.py serve 0)" start_app

start_step "scrapeguard serve (user_id dropped, e-mails redacted)" start_gateway

# Both at once: each takes a second or two to be ready.
start_both() {
    launch_prometheus prometheus-native.yml tsdb-native prometheus-native.log "$native_port" \
        --enable-feature=native-histograms
    launch_prometheus prometheus-classic.yml tsdb-classic prometheus-classic.log "$classic_port"
    prometheus_ready "$native_port"
    prometheus_ready "$classic_port"
}
start_step "prometheus native (feature on) + classic" start_both

# ------------------------------------------------------------------ checks
# The PII checks prove something only if the app serves PII, in both formats.
app_raw() {
    curl -fsS -H "Accept: $accept_native" "http://127.0.0.1:$app_port/metrics" >"$work/app-body.bin"
    "$py" "$app" decode <"$work/app-body.bin" >"$work/app-body.json"
    curl -fsS -H "Accept: $accept_classic" "http://127.0.0.1:$app_port/metrics" >"$work/app-body.txt"
    local body
    for body in app-body.json app-body.txt; do
        grep -q 'user_id' "$work/$body" || { echo "$body: no user_id"; return 1; }
        grep -q 'bob@example.org' "$work/$body" || { echo "$body: no e-mail address"; return 1; }
    done
    echo "protobuf and text both carry user_id and bob@example.org"
}
check "the app's raw output has user_id and an e-mail" app_raw

# gateway ACCEPT: the gateway's answer to a scraper with that Accept (no ?scraper=).
gateway() {
    curl -fsS --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" --key "$work/certs/client.key" \
        -u "prometheus:$(cat "$work/password")" -H "Accept: $1" -D "$work/gateway-head.txt" \
        "https://$gw_instance/metrics"
}
gateway_formats() {
    local ct n
    gateway "$accept_native" >"$work/gateway-body.bin"
    ct=$(tr -d '\r' <"$work/gateway-head.txt" | sed -n 's/^[Cc]ontent-[Tt]ype: //p')
    [[ $ct == "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited" ]] ||
        { echo "native Accept: Content-Type $ct"; return 1; }
    n=$("$py" "$app" split <"$work/gateway-body.bin")
    gateway "$accept_classic" >"$work/gateway-body.txt"
    ct=$(tr -d '\r' <"$work/gateway-head.txt" | sed -n 's/^[Cc]ontent-[Tt]ype: //p')
    [[ $ct == "text/plain; version=0.0.4; charset=utf-8" ]] || { echo "classic Accept: Content-Type $ct"; return 1; }
    grep -q '^rpc_latency_seconds_count{service="billing"} 19$' "$work/gateway-body.txt" ||
        { echo "classic Accept: no rpc_latency_seconds_count 19 in the text"; return 1; }
    echo "native Accept: protobuf $n; classic Accept: text 0.0.4"
}
check "gateway: protobuf to the protobuf Accept, else text" gateway_formats

check "native: up after 3 scrapes" "$py" "$helper" wait-up "$native" native 3 20
check "native: rpc_latency_seconds is native, count" \
    "$py" "$helper" expect "$native" 'histogram_count(rpc_latency_seconds{job="native"})' 19 10
check "native: rpc_latency_seconds is native, sum" \
    "$py" "$helper" expect "$native" 'histogram_sum(rpc_latency_seconds{job="native"})' 3.7 10
check "native: classic+native one is native, count" \
    "$py" "$helper" expect "$native" 'histogram_count(grpc_server_handling_seconds{job="native"})' 442 10
check "native: classic+native one is native, sum" \
    "$py" "$helper" expect "$native" 'histogram_sum(grpc_server_handling_seconds{job="native"})' 61.7 10
check "native: up == 1" "$py" "$helper" expect "$native" 'up{job="native"} == 1' 1 10
check "native: http_requests_total customer redacted" \
    "$py" "$helper" expect "$native" 'http_requests_total{job="native",method="GET",customer="redacted"}' 1027 10
check "native: no user_id, no e-mail in any series" "$py" "$helper" no-label-no-email "$native" user_id

check "classic: up after 3 scrapes" "$py" "$helper" wait-up "$classic" classic 3 20
check "classic: rpc_latency_seconds_count is a float" \
    "$py" "$helper" expect "$classic" 'rpc_latency_seconds_count{job="classic"}' 19 10
check "classic: rpc_latency_seconds_bucket{le=+Inf}" \
    "$py" "$helper" expect "$classic" 'rpc_latency_seconds_bucket{job="classic",le="+Inf"}' 19 10
check "classic: histogram_count(rpc_latency_seconds) none" \
    "$py" "$helper" no-series "$classic" 'histogram_count(rpc_latency_seconds)'
check "classic: up == 1" "$py" "$helper" expect "$classic" 'up{job="classic"} == 1' 1 10
check "classic: http_requests_total customer redacted" \
    "$py" "$helper" expect "$classic" 'http_requests_total{job="classic",method="GET",customer="redacted"}' 1027 10
check "classic: no user_id, no e-mail in any series" "$py" "$helper" no-label-no-email "$classic" user_id

check "app log: protobuf asked by native only" "$py" "$helper" accepts "$work/app-requests.log"

summary
((failed == 0))
