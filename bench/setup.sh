#!/usr/bin/env bash
# Install the reference tools the benchmarks compare perftui against, idempotently.
#
#   bash bench/setup.sh
#
# Debian packages: wrk, hey, nginx (nginx is never started as a service: the benchmarks run
# their own instance on 127.0.0.1 with a temporary prefix). Python: locust (+ psutil, py-spy)
# in bench/.venv-locust, kept apart from the project's venv so its pins cannot clash.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sudo=""
if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi

missing=()
for pair in wrk:wrk hey:hey nginx:/usr/sbin/nginx; do
    pkg="${pair%%:*}"
    bin="${pair#*:}"
    if ! command -v "$bin" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench/setup.sh: installing ${missing[*]} from Debian's packages"
    $sudo apt-get update -q
    # policy-rc.d (where present) keeps the nginx package from starting a system service.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

venv="$here/.venv-locust"
if [ ! -x "$venv/bin/locust" ] || [ ! -x "$venv/bin/py-spy" ]; then
    echo "bench/setup.sh: creating $venv with locust, psutil, py-spy"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check locust psutil py-spy
fi

echo "bench/setup.sh: ready"
echo "  $(wrk --version 2>&1 | head -1)"
echo "  hey $(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?')"
echo "  $(/usr/sbin/nginx -v 2>&1)"
echo "  $("$venv/bin/locust" --version 2>&1 | head -1)"
