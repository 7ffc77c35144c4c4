# shellcheck shell=bash
# Functions shared by the bench/ scripts (sourced; defines functions only).

# bench_body N: an app's exposition of N series, each with an e-mail address and a
# client IP among its labels (what the PII policy is for).
bench_body() {
    python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
print("# HELP app_http_requests_total HTTP requests by route and status.")
print("# TYPE app_http_requests_total counter")
for i in range(n):
    print(f'app_http_requests_total{{method="get",route="/api/v1/items/{i}",status="200",user_email="user{i % 997}@example.com",client_ip="10.{i % 250}.{i % 199}.{i % 97}"}} {i * 3 + 1}')
PY
}

# bench_web_config USER BCRYPT_HASH: the gateway's web-config.yml, with the dev
# certificates in certs/ beside it (certs/gen-dev-certs.sh) and the Prometheus
# client certificate's SAN allowed.
bench_web_config() {
    cat <<YAML
tls_server_config:
  cert_file: certs/server.crt
  key_file: certs/server.key
  client_ca_file: certs/ca.crt
  client_auth_type: RequireAndVerifyClientCert
  client_allowed_sans: [spiffe://cluster.local/ns/monitoring/sa/prometheus]
basic_auth_users:
  $1: $2
YAML
}

# free_port: a TCP port on 127.0.0.1 that is free now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
