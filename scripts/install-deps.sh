#!/usr/bin/env bash
# Installs what building (`build`) or testing (`test`) needs, only what is missing,
# so that it is cheap to run every time. Debian packages through apt, Python tools
# into the project's own virtual environment .venv-test/.
set -euo pipefail

what=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=(libssl-dev libcrypt-dev libpcre2-dev zlib1g-dev openssl curl pkg-config)
if [[ $what == test ]]; then
    # promtool (prometheus) checks the gateway's own metrics and the deploy rules.
    apt_packages+=(python3-venv prometheus)
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
if ((${#missing[@]})); then
    echo "install-deps: apt-get install ${missing[*]}"
    sudo_prefix=()
    [[ $(id -u) == 0 ]] || sudo_prefix=(sudo)
    "${sudo_prefix[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_prefix[@]}" apt-get install -y -qq "${missing[@]}"
fi

if [[ $what == test ]]; then
    venv=$root/.venv-test
    # sslyze: the TLS compliance test; prometheus_client: the exposition parser.
    python_tools=(sslyze==6.3.1 prometheus_client==0.26.0)
    if [[ ! -x $venv/bin/sslyze ]] || ! "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
        echo "install-deps: ${python_tools[*]} into .venv-test"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_tools[@]}"
    fi
fi
