#!/usr/bin/env bash
# Install everything ixpscamper needs on a fresh Debian machine (run as root):
# the Debian scamper tools (test oracle and interop peers), iproute2 for the
# namespace labs, and this package with its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v scamper >/dev/null || ! command -v ip >/dev/null || ! command -v pgrep >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq scamper iproute2 procps >/dev/null
fi
# compat editable mode: a plain src/ path entry, which also exposes
# src/twisted/plugins (a link to twisted/plugins) to twistd's plugin search.
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q -e '.[test]' --config-settings editable_mode=compat
