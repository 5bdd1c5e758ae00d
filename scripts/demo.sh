#!/usr/bin/env bash
# The main job on a fresh Debian machine: set up (scripts/setup.sh), then run
# the IXP demo lab (controller + VP + attach client; a trace via each member
# router) with the programs of the checkout's virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${IXP_VENV:-$PWD/.venv}
bash scripts/setup.sh
export PATH="$venv/bin:$PATH"
exec "$venv/bin/ixp-lab" demo "$@"
