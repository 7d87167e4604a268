#!/bin/sh
# Install what `make bench-peers` needs and is missing: Debian's redis-server and
# nats-server (apt-get, only when the binaries are not already on PATH or in
# /usr/bin), then the Python clients and matplotlib into the virtualenv given as
# $1 (not project dependencies: they are listed in bench/peers/requirements.txt).
set -eu
python=${1:?usage: install.sh PATH/TO/VENV/PYTHON}
here=$(dirname "$0")
missing=""
for binary in redis-server nats-server; do
    if ! command -v "$binary" >/dev/null 2>&1 && [ ! -x "/usr/bin/$binary" ] && [ ! -x "/usr/sbin/$binary" ]; then
        missing="$missing $binary"
    fi
done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian packages:$missing" >&2
    $sudo apt-get update -q
    # shellcheck disable=SC2086  # $missing is a list of package names
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
"$python" -m pip install -q -r "$here/requirements.txt"
