#!/usr/bin/env bash
# The main job on a fresh Debian machine: install, then run the IXP demo lab
# (controller + VP + attach client; a trace via each member router).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ixp-lab demo "$@"
