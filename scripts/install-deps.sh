#!/usr/bin/env bash
# Installs what building (`build`), testing (`test`), comparing against nginx and
# node_exporter (`bench`, for bench/compare.sh and bench/resources.sh) or building
# the container image (`image`, for scripts/image.sh) needs, only what is missing,
# so that it is cheap to run every time. Debian packages through apt, Python tools
# into the project's own virtual environment .venv-test/.
set -euo pipefail

what=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=(libssl-dev libcrypt-dev libre2-dev zlib1g-dev libyaml-dev openssl curl pkg-config)
if [[ $what == test ]]; then
    # promtool (prometheus) checks the gateway's own metrics and the deploy rules;
    # prometheus and promtool are the reference for relabeling (e2e/); Go's own
    # regexp (golang-go) the reference for relabel regexes (RelabelOracleTests).
    # strace: a configuration load opens each file once (ConfigurationLoaderTests).
    # iproute2 (ss): a scraper socket's send buffer, as the kernel sees it (LimitsTests).
    # protobuf-compiler (protoc 3.21): compiles Tests/Support/proto/metrics.proto for the
    # protobuf exposition's reference (Tests/Support/protobuf_exposition.py).
    apt_packages+=(python3-venv prometheus golang-go strace iproute2 protobuf-compiler)
fi
if [[ $what == bench ]]; then
    # wrk: the load; apache2-utils: htpasswd -B; gcc and libssl-dev (above): wrk's
    # client-certificate shim; nginx: the reverse proxy compared against (below);
    # prometheus-node-exporter: the Go exporter (exporter-toolkit's TLS and basic auth)
    # whose footprint bench/resources.sh prints beside scrapeguard's and nginx's.
    apt_packages+=(wrk apache2-utils gcc libc6-dev python3 iproute2 prometheus-node-exporter)
fi
if [[ $what == image ]]; then
    # buildah: builds deploy/Dockerfile's runtime stage without a Docker engine;
    # binutils: objcopy and readelf (scripts/image-rootfs.sh strips the binary and
    # reads its loader); python3: the stand-in app of scripts/image.sh's proof.
    apt_packages+=(buildah binutils python3)
fi

missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# python3-venv is Debian's; a python3 that already makes venvs needs no package.
if [[ " ${missing[*]} " == *" python3-venv "* ]] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing=("${missing[@]/python3-venv/}")
fi
read -r -a missing <<<"${missing[*]}"
# Any of Debian's nginx flavours will do; nginx-light (the smallest) when there is
# none. Which name exists is only known after apt-get update (trixie dropped it).
need_nginx=0
if [[ $what == bench ]] && ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    need_nginx=1
fi
if ((${#missing[@]} || need_nginx)); then
    sudo_prefix=()
    [[ $(id -u) == 0 ]] || sudo_prefix=(sudo)
    "${sudo_prefix[@]}" apt-get update -qq
    if ((need_nginx)); then
        if apt-cache show nginx-light >/dev/null 2>&1; then missing+=(nginx-light); else missing+=(nginx); fi
    fi
    echo "install-deps: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive "${sudo_prefix[@]}" apt-get install -y -qq "${missing[@]}"
fi

if [[ $what == test ]]; then
    venv=$root/.venv-test
    # sslyze: the TLS compliance test; prometheus_client: the exposition parser (and
    # the e2e test's app); PyYAML: the e2e test reads the deploy rules and policy;
    # protobuf: the runtime of the code protoc makes, the release that matches Debian's
    # protoc 3.21.12 (4.21.12), for the protobuf exposition's reference.
    protobuf_version=4.21.12
    python_tools=(sslyze==6.3.1 prometheus_client==0.26.0 PyYAML==6.0.4 protobuf==$protobuf_version)
    if [[ ! -x $venv/bin/sslyze ]] || ! "$venv/bin/python" -c "import prometheus_client, yaml, google.protobuf as p; assert p.__version__ == '$protobuf_version'" 2>/dev/null; then
        echo "install-deps: ${python_tools[*]} into .venv-test"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_tools[@]}"
    fi
fi
