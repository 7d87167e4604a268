#!/bin/sh
# Install the programs outside Python that the tests drive, when missing: kcat
# (Debian package, with apt-get; Node.js and npm the same way if absent), curl
# and jq (the HTTP examples of docs/http.md), Chromium (the web console's
# browser tests, driven by Playwright), promtool (Debian package prometheus:
# tests/metrics checks docs/alerts.yml with it) and kafkajs (npm, the version
# pinned in tests/server/node/package-lock.json, into tests/server/node/node_modules,
# which git ignores).
#
# Usage: install_tools.sh [STAMP]. Never fails the caller: without network or
# without apt-get/npm it says what is missing and exits 0; the tests that need
# a missing tool then fail with a message (tests/server/_tools.py). STAMP is
# touched only when every tool is present, so `make test` tries again next time
# until then.
set -u
here=$(cd "$(dirname "$0")" && pwd)
stamp=${1:-}

packages=""
command -v kcat >/dev/null 2>&1 || packages="$packages kcat"
command -v curl >/dev/null 2>&1 || packages="$packages curl"  # docs/http.md's examples
command -v jq >/dev/null 2>&1 || packages="$packages jq"
command -v node >/dev/null 2>&1 || packages="$packages nodejs"
command -v npm >/dev/null 2>&1 || packages="$packages npm"
# Chromium, for the web console's browser tests (driven by Playwright).
command -v chromium >/dev/null 2>&1 || packages="$packages chromium"
command -v promtool >/dev/null 2>&1 || packages="$packages prometheus"
if [ -n "$packages" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
        echo "install_tools: installing Debian packages:$packages" >&2
        # shellcheck disable=SC2086  # $packages is a list of package names
        { $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends $packages; } >&2 \
            || echo "install_tools: apt-get failed (offline? no sudo?)" >&2
    else
        echo "install_tools: no apt-get to install:$packages" >&2
    fi
fi

if [ ! -f "$here/node/node_modules/kafkajs/package.json" ] && command -v npm >/dev/null 2>&1; then
    echo "install_tools: installing kafkajs (npm ci in $here/node)" >&2
    (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error) >&2 \
        || echo "install_tools: npm ci failed (offline?)" >&2
fi

missing=""
for program in kcat node curl jq chromium promtool; do
    command -v "$program" >/dev/null 2>&1 || missing="$missing $program"
done
[ -f "$here/node/node_modules/kafkajs/package.json" ] || missing="$missing kafkajs"
if [ -n "$missing" ]; then
    echo "install_tools: still missing:$missing; the tests that need them will fail" \
         "(MQLOG_ALLOW_MISSING_TOOLS=1 makes them skip)" >&2
elif [ -n "$stamp" ]; then
    touch "$stamp"
fi
exit 0
