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

# nginx_mtls_proxy CERTS APP_PORT: the http-block lines that make nginx the proxy
# scrapeguard is compared with: the same certificate, key and client CA (client
# certificates required), protocols, TLS 1.2 suites and groups as scrapeguard's
# defaults, and an upstream `app` on 127.0.0.1:APP_PORT with keep-alive.
nginx_mtls_proxy() {
    cat <<EOF
    ssl_certificate $1/server.crt;
    ssl_certificate_key $1/server.key;
    ssl_client_certificate $1/ca.crt;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    upstream app {
        server 127.0.0.1:$2;
        keepalive 16;
    }
EOF
}
