#!/usr/bin/env bash
# Install the benchmark's load generator and reference servers, idempotently.
#
# Why a script: nothing installed by hand survives a change of machine, so
# the harness must be able to bring back wrk, nginx, Ocsigen and hypercorn
# itself.  apt is only touched when a package is actually missing, so running
# this again is cheap and does not need the network.
#
# Usage: bash bench/install.sh            (as root, or with sudo available)
#        PYTHON=.venv/bin/python bash bench/install.sh
set -euo pipefail

# wrk: load generator.  nginx-light: C reference.  ocsigenserver: OCaml
# reference (ships /usr/bin/ocsigenserver.opt).  libre-ocaml-dev and
# libssl-ocaml-dev: findlib META files the dynamically loaded Ocsigen
# extensions need.  media-types: /etc/mime.types used by the Ocsigen configs.
# util-linux: taskset (normally already there).
APT_PACKAGES=(wrk nginx-light ocsigenserver libre-ocaml-dev libssl-ocaml-dev media-types util-linux)
# "The current python": $PYTHON, else the active virtualenv, else python3.
if [ -z "${PYTHON:-}" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ]; then PYTHON="$VIRTUAL_ENV/bin/python"; else PYTHON="python3"; fi
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench/install.sh: installing ${missing[*]}"
    $SUDO apt-get update -q
    # Debian starts services on install where an init system runs; the
    # benchmark starts its own nginx, so keep any system one from holding :80.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "bench/install.sh: apt packages already installed"
fi

if "$PYTHON" -c 'import hypercorn, uvloop, aiohttp, uvicorn, httptools, gunicorn, starlette, granian' 2>/dev/null; then
    echo "bench/install.sh: the Python peers are already importable by $PYTHON"
else
    # aiohttp: the proxy rows' peer; uvicorn (httptools), gunicorn, starlette: the application rows
    echo "bench/install.sh: pip installing the Python peers into $PYTHON"
    "$PYTHON" -m pip install --quiet hypercorn uvloop aiohttp uvicorn httptools gunicorn starlette granian
fi

for f in /usr/bin/ocsigenserver.opt /usr/sbin/nginx /usr/bin/wrk; do
    [ -x "$f" ] || { echo "bench/install.sh: expected $f after install" >&2; exit 1; }
done
echo "bench/install.sh: ok"
