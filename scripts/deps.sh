#!/bin/sh
# Installs what citybrain needs to build, test and run: Debian packages via apt,
# front-end packages via npm. Idempotent: does nothing when everything is present,
# and runs `apt-get update` only when a package is missing.
set -eu

cd "$(dirname "$0")/.."

# Build and runtime libraries, the MQTT broker and clients, test tools.
PACKAGES="gcc make pkg-config python3 valgrind
libmicrohttpd-dev libjansson-dev libsqlite3-dev libsodium-dev libcurl4-openssl-dev
libmosquitto-dev mosquitto mosquitto-clients libgeos-dev
nodejs npm chromium fonts-wqy-microhei"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

# node/npm may come from outside Debian (nvm, NodeSource); accept working binaries.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | tr ' ' '\n' | grep -v -x -e nodejs -e npm | tr '\n' ' ')
fi

if [ -n "$(echo "$missing" | tr -d ' ')" ]; then
    echo "deps: installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# Front-end packages, pinned by web/package-lock.json.
if [ -f web/package.json ]; then
    if [ ! -d web/node_modules ] || [ web/package.json -nt web/node_modules/.stamp ] \
        || { [ -f web/package-lock.json ] && [ web/package-lock.json -nt web/node_modules/.stamp ]; }; then
        echo "deps: installing web packages"
        if [ -f web/package-lock.json ]; then
            (cd web && npm ci --no-audit --no-fund --loglevel=error)
        else
            (cd web && npm install --no-audit --no-fund --loglevel=error)
        fi
        touch web/node_modules/.stamp
    fi
fi
