#!/usr/bin/env bash
# Set up a development / CI checkout on Debian 12 (run as root the first
# time, for apt): the Debian packages the project needs, then a virtual
# environment in .venv made from Debian's own /usr/bin/python3 with this
# package installed in it (editable, with the test extra).
#
# Debian's python3 is externally managed (PEP 668): pip never touches it
# here, and --break-system-packages is never used.  Everything Python goes
# into the virtual environment.
#
# Idempotent and fast when nothing changed: apt runs only for missing
# packages, pip only when pyproject.toml changed or the venv is broken.
#
# Environment: IXP_VENV (default: .venv in the checkout),
#              IXP_PYTHON (default: /usr/bin/python3, the interpreter the
#              venv is made from).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv=${IXP_VENV:-$repo/.venv}
base_python=${IXP_PYTHON:-/usr/bin/python3}
prog=setup.sh

die() { echo "$prog: $*" >&2; exit 1; }

# --- Debian packages ------------------------------------------------------
# python3-venv: `python3 -m venv` (ensurepip) on Debian; scamper: the test
# oracle and interop peers; iproute2: the namespace labs; procps: pgrep;
# bird2: BGP in the lab; bgpdump and python3-pyasn (real RouteViews RIB
# excerpts): the MRT reader's oracle and test data.
apt_packages=(python3 python3-venv scamper iproute2 procps bird2 bgpdump python3-pyasn groff-base man-db)
missing=()
for pkg in "${apt_packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
    echo "$prog: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # bird2 is for the lab's namespaces only: its package must not start a
    # BIRD in the host (a policy-rc.d that refuses service starts, for the
    # length of the install, unless one is there already).
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ -z "$made_policy" ] || rm -f "$policy"
fi
[ -x "$base_python" ] || die "$base_python not found (IXP_PYTHON names the interpreter for the venv)"

# --- the virtual environment ----------------------------------------------
# A venv made from another interpreter (say a pyenv python, or a Debian
# point release that replaced the base) is rebuilt, so the tests always run
# on the interpreter named above.
want_base=$("$base_python" -c 'import sys; print(sys.base_prefix, sys.version_info[:2])')
have_base=$("$venv/bin/python" -c 'import sys; print(sys.base_prefix, sys.version_info[:2])' 2>/dev/null || true)
if [ "$want_base" != "$have_base" ]; then
    echo "$prog: creating the virtual environment $venv from $base_python"
    "$base_python" -m venv --clear "$venv" \
        || die "$base_python -m venv failed (Debian: apt-get install python3-venv)"
fi
vpython=$venv/bin/python
# Never let pip loose on an interpreter that is not a venv (PEP 668).
"$vpython" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' \
    || die "$vpython is not a virtual environment; refusing to run pip on it"

# The stamp records what the venv was last installed from; when it matches
# and the package imports from this checkout, there is nothing to do.
stamp=$venv/.ixpscamper-setup
want_stamp="$repo $(sha256sum pyproject.toml | cut -d' ' -f1)"
installed_here() {
    "$vpython" - "$repo" <<'EOF' 2>/dev/null
import pathlib, sys
import ixpscamper, twisted.plugins.ixpscamper_plugins  # noqa: F401
here = pathlib.Path(ixpscamper.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]).resolve())
sys.exit(0 if here else 1)
EOF
}
if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want_stamp" ] && installed_here; then
    exit 0
fi

echo "$prog: installing ixpscamper[test] into $venv"
# compat editable mode: a plain src/ path entry, which also exposes
# src/twisted/plugins (a link to twisted/plugins) to twistd's plugin search.
"$vpython" -m pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
installed_here || die "ixpscamper does not import from $repo after the install"
plugins=$("$venv/bin/twistd" --help 2>&1 || true)
for p in ixp-remoted ixp-vp; do
    grep -qw -- "$p" <<<"$plugins" || die "$venv/bin/twistd --help does not list the $p plugin"
done
echo "$want_stamp" >"$stamp"
