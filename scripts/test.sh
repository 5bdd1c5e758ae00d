#!/usr/bin/env bash
# The test suite, as CI runs it (.ci/run): set up (scripts/setup.sh: Debian
# packages, .venv from /usr/bin/python3), then pytest on the venv's python.
# Arguments go to pytest (e.g. scripts/test.sh tests/test_warts_cli.py -x).
#
# The venv's bin/ goes first on PATH so that a test or tool that looks up
# ixp-*, twistd or python by name gets this checkout's, not another
# install's.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${IXP_VENV:-$PWD/.venv}
bash scripts/setup.sh
export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest -q "$@"
