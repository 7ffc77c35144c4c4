#!/usr/bin/env bash
# Make a throwaway PKI for developing and testing Scrapeguard: a dev CA, a server
# certificate, a Prometheus client certificate and (with --test-extras) the odd
# certificates the test-suite needs to prove that bad clients are refused.
#
# Usage: certs/gen-dev-certs.sh [--test-extras] OUTDIR [EXTRA_SERVER_NAME ...]
#
#   OUTDIR             folder to write into (made with mode 0700; keys are 0600)
#   EXTRA_SERVER_NAME  more subjectAltNames for the server certificate; an IPv4 or
#                      IPv6 address becomes an IP SAN, anything else a DNS SAN
#   --test-extras      also make the negative-test material (see certs/README.md)
#
# Environment: DAYS  validity of the CA and the leaf certificates (default 30).
#
# Needs only the openssl CLI (checked with OpenSSL 3.0). Every file is written to a
# temporary folder inside OUTDIR and renamed into place, so a server that watches
# OUTDIR never sees a half-written file; the temporary folder is always removed.
set -euo pipefail

prog=${0##*/}

usage() {
    cat <<EOF
usage: $prog [--test-extras] OUTDIR [EXTRA_SERVER_NAME ...]

Creates in OUTDIR: ca.crt/ca.key, server.crt/server.key, client.crt/client.key.
--test-extras also creates other-ca, client-other-ca, client-wrong-san,
client-expired, client-email-san, server-rsa (.crt/.key each) and broken.crt.
DAYS (default 30) sets the validity in days.
EOF
}

die() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}

test_extras=0
outdir=
extra_names=()
while (($#)); do
    case $1 in
    --test-extras) test_extras=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        break
        ;;
    -*)
        usage >&2
        die "unknown option: $1"
        ;;
    *)
        if [[ -z $outdir ]]; then outdir=$1; else extra_names+=("$1"); fi
        ;;
    esac
    shift
done
# Anything after "--" is positional too.
while (($#)); do
    if [[ -z $outdir ]]; then outdir=$1; else extra_names+=("$1"); fi
    shift
done
[[ -n $outdir ]] || {
    usage >&2
    exit 2
}

days=${DAYS:-30}
[[ $days =~ ^[1-9][0-9]{0,4}$ ]] || die "DAYS must be a positive whole number of days, got '$days'"

command -v openssl >/dev/null 2>&1 || die "openssl not found in PATH"

# The SPIFFE identity that the Prometheus client certificate carries and that
# web-config's client_allowed_sans is expected to list.
readonly GOOD_SAN="URI:spiffe://cluster.local/ns/monitoring/sa/prometheus"
readonly WRONG_SAN="URI:spiffe://cluster.local/ns/default/sa/intruder"
readonly EMAIL_SAN="email:prometheus@example.com"

# Build the server's subjectAltName list. Names go into an openssl config file,
# so refuse anything that could break out of a config value.
server_san="DNS:localhost, IP:127.0.0.1, IP:::1"
for name in "${extra_names[@]+"${extra_names[@]}"}"; do
    if [[ $name =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
        server_san+=", IP:$name"
    elif [[ $name == *:* ]]; then
        [[ $name =~ ^[0-9A-Fa-f:.]+$ ]] || die "not an IPv6 address: '$name'"
        server_san+=", IP:$name"
    elif [[ $name =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$ ]]; then
        server_san+=", DNS:${name%.}"
    else
        die "not a DNS name or IP address: '$name'"
    fi
done

umask 077
mkdir -p -- "$outdir"
chmod 0700 -- "$outdir"

work=$(mktemp -d "$outdir/.gen-dev-certs.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
trap 'exit 130' INT TERM

# One config file for every certificate: the req section is only used for the
# self-signed CAs; each leaf picks its own extension section.
cat >"$work/openssl.cnf" <<EOF
[ req ]
distinguished_name = req_dn
prompt             = no
x509_extensions    = ca_ext

[ req_dn ]
CN = unused

[ ca_ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ server_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = $server_san
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ server_rsa_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = $server_san
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ client_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectAltName         = $GOOD_SAN
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ client_wrong_san_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectAltName         = $WRONG_SAN
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ client_email_san_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectAltName         = $EMAIL_SAN
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

# Used only by "openssl ca" for the expired client certificate: "openssl x509
# -req" in OpenSSL 3.0 cannot set a start date in the past, "openssl ca" can.
[ ca ]
default_ca = expired_ca

[ expired_ca ]
dir             = $work/ca-db
database        = \$dir/index.txt
serial          = \$dir/serial
new_certs_dir   = \$dir/new
certificate     = $work/ca.crt
private_key     = $work/ca.key
default_md      = sha256
policy          = policy_any
unique_subject  = no
copy_extensions = none
email_in_dn     = no

[ policy_any ]
organizationName = optional
commonName       = supplied
EOF

ossl() {
    # openssl is chatty on stderr even on success; show it only on failure.
    if ! openssl "$@" 2>"$work/stderr"; then
        cat "$work/stderr" >&2
        die "openssl $1 failed"
    fi
}

new_ec_key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$1.key"; }
new_rsa_key() { ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/$1.key"; }
serial() { printf '0x%s' "$(openssl rand -hex 16)"; }

# new_ca NAME CN
new_ca() {
    new_ec_key "$1"
    ossl req -config "$work/openssl.cnf" -new -x509 -sha256 -days "$days" \
        -key "$work/$1.key" -subj "/O=Scrapeguard dev/CN=$2" -set_serial "$(serial)" \
        -out "$work/$1.crt"
}

# new_leaf NAME CA SUBJECT EXT_SECTION [rsa]
new_leaf() {
    if [[ ${5:-} == rsa ]]; then new_rsa_key "$1"; else new_ec_key "$1"; fi
    ossl req -config "$work/openssl.cnf" -new -key "$work/$1.key" -subj "$3" -out "$work/$1.csr"
    ossl x509 -req -sha256 -days "$days" -in "$work/$1.csr" \
        -CA "$work/$2.crt" -CAkey "$work/$2.key" -set_serial "$(serial)" \
        -extfile "$work/openssl.cnf" -extensions "$4" -out "$work/$1.crt"
    rm -f -- "$work/$1.csr"
}

made=()
# install NAME DESCRIPTION: move NAME.crt (0644) and NAME.key (0600) into OUTDIR.
install_pair() {
    chmod 0644 -- "$work/$1.crt"
    chmod 0600 -- "$work/$1.key"
    mv -f -- "$work/$1.key" "$outdir/$1.key"
    mv -f -- "$work/$1.crt" "$outdir/$1.crt"
    made+=("$(printf '%-26s %s' "$1.crt/.key" "$2")")
}

# --- the everyday set -------------------------------------------------------
new_ca ca "Scrapeguard Dev CA"
new_leaf server ca "/O=Scrapeguard dev/CN=localhost" server_ext
new_leaf client ca "/O=Scrapeguard dev/CN=prometheus" client_ext

if ((test_extras)); then
    new_ca other-ca "Unrelated Dev CA"
    new_leaf client-other-ca other-ca "/O=Scrapeguard dev/CN=prometheus" client_ext
    new_leaf client-wrong-san ca "/O=Scrapeguard dev/CN=prometheus" client_wrong_san_ext
    new_leaf client-email-san ca "/O=Scrapeguard dev/CN=prometheus" client_email_san_ext
    new_leaf server-rsa ca "/O=Scrapeguard dev/CN=localhost" server_rsa_ext rsa

    # Expired client: same CA, same good SAN, valid only on 2020-01-01.
    mkdir -p "$work/ca-db/new"
    : >"$work/ca-db/index.txt"
    openssl rand -hex 16 >"$work/ca-db/serial"
    new_ec_key client-expired
    ossl req -config "$work/openssl.cnf" -new -key "$work/client-expired.key" \
        -subj "/O=Scrapeguard dev/CN=prometheus" -out "$work/client-expired.csr"
    ossl ca -config "$work/openssl.cnf" -batch -notext -in "$work/client-expired.csr" \
        -startdate 20200101000000Z -enddate 20200102000000Z \
        -extfile "$work/openssl.cnf" -extensions client_ext -out "$work/client-expired.crt"

    # Not a certificate: PEM armour around base64 that decodes to plain text, so a
    # loader gets past the PEM layer and must fail on the DER inside.
    {
        echo "This file is deliberately not a certificate (Scrapeguard negative tests)."
        echo "-----BEGIN CERTIFICATE-----"
        printf 'this is not DER, just text pretending to be a certificate\n' | openssl base64
        echo "-----END CERTIFICATE-----"
    } >"$work/broken.crt"
    chmod 0644 -- "$work/broken.crt"
fi

# Rename into place only when everything was made, CA last so that a watcher
# never pairs a new CA with old leaves for longer than necessary.
install_pair server "server: SAN ${server_san//, / }; serverAuth; ECDSA P-256"
install_pair client "client: CN=prometheus, SAN ${GOOD_SAN}; clientAuth"
if ((test_extras)); then
    install_pair other-ca "a second, unrelated CA"
    install_pair client-other-ca "client with the good SAN, signed by other-ca"
    install_pair client-wrong-san "client signed by ca, SAN ${WRONG_SAN}"
    install_pair client-expired "client signed by ca, good SAN, valid 2020-01-01..2020-01-02"
    install_pair client-email-san "client signed by ca, SAN ${EMAIL_SAN}"
    install_pair server-rsa "server with the same SANs, RSA 2048"
    mv -f -- "$work/broken.crt" "$outdir/broken.crt"
    made+=("$(printf '%-26s %s' broken.crt "garbage in PEM armour, not a certificate")")
else
    # Leftovers from an earlier --test-extras run were signed by a CA that no longer
    # exists; remove them so that OUTDIR holds one consistent set.
    for n in other-ca client-other-ca client-wrong-san client-expired client-email-san server-rsa; do
        rm -f -- "$outdir/$n.crt" "$outdir/$n.key"
    done
    rm -f -- "$outdir/broken.crt"
fi
install_pair ca "dev CA (CA:TRUE critical; keyCertSign, cRLSign); ${days} days"

printf 'Made in %s:\n' "$outdir"
printf '  %s\n' "${made[@]}"
