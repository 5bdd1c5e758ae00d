#!/usr/bin/env bash
# Operator install of ixpscamper on Debian 12 (as root):
#
#     bash scripts/install.sh [--prefix /opt/ixpscamper] [--destdir DIR] [--python /usr/bin/python3]
#
# puts
#     PREFIX/venv/                         a virtual environment made from Debian's
#                                          /usr/bin/python3 holding ixpscamper and its
#                                          dependencies (twistd, ixp-attach, ixp-warts2text, ...)
#     /usr/lib/systemd/system/ixp-remoted.service, ixp-vp.service   (ExecStart into PREFIX/venv)
#     /usr/lib/sysusers.d/ixpscamper.conf  user and group ixpscamper
#     /usr/lib/tmpfiles.d/ixpscamper.conf  /run/ixp-remoted
#     /etc/ixpscamper/ixp-remoted.toml, ixp-vp.toml, tls/   (a changed config is kept; the
#                                          new one is written next to it as .dist)
#     /usr/share/doc/ixpscamper/           README.md, architecture.md, LICENSE,
#                                          grafana-ixpscamper.json (dashboard of the metrics)
#
# With --destdir (or DESTDIR=) everything goes below that directory, laid out
# for PREFIX and the paths above (for a package build); nothing is written
# outside it, and no file in it names it.  Without, the install runs
# systemd-sysusers, systemd-tmpfiles and a daemon-reload, and the services
# can be enabled.  Debian's python3 is externally managed (PEP 668): pip only
# ever runs inside the new venv.
set -euo pipefail
prog=install.sh
die() { echo "$prog: $*" >&2; exit 1; }

prefix=/opt/ixpscamper
destdir=${DESTDIR:-}
base_python=${IXP_PYTHON:-/usr/bin/python3}
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --python) [ $# -ge 2 ] || die "--python needs an interpreter"; base_python=$2; shift 2 ;;
        --python=*) base_python=${1#*=}; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
case $prefix in /*) ;; *) die "--prefix must be an absolute path, not '$prefix'" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || die "--prefix must not be /"
if [ -n "$destdir" ]; then
    mkdir -p -- "$destdir"
    destdir=$(cd -- "$destdir" && pwd)
    [ "$destdir" != / ] || destdir=
fi

cd "$(dirname "$0")/.."
repo=$PWD
unitdir=/usr/lib/systemd/system
sysusersdir=/usr/lib/sysusers.d
tmpfilesdir=/usr/lib/tmpfiles.d
docdir=/usr/share/doc/ixpscamper
confdir=/etc/ixpscamper

# --- what the venv needs from Debian ----------------------------------------
status=$(dpkg-query -W -f='${Status}' python3-venv 2>/dev/null || true)
if [ "$status" != "install ok installed" ]; then
    [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ] || die "python3-venv is not installed (apt-get install python3-venv)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
[ -x "$base_python" ] || die "$base_python not found"

# Everything temporary lives in one directory, removed on any exit.
work=$(mktemp -d "${TMPDIR:-/tmp}/ixpscamper-install.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# --- the virtual environment ------------------------------------------------
# Built from a copy of the source, so the checkout gets no build/ or
# egg-info from it.
mkdir "$work/src"
tar -C "$repo" --exclude='*.egg-info' --exclude=__pycache__ --exclude=dropin.cache \
    -cf - pyproject.toml README.md LICENSE src twisted | tar -C "$work/src" -xf -
venv=$prefix/venv
target=$destdir$venv
echo "$prog: creating $venv from $base_python"
mkdir -p -- "$(dirname -- "$target")"
"$base_python" -m venv --clear "$target" || die "$base_python -m venv failed"
"$target/bin/python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' \
    || die "$target/bin/python is not a virtual environment; refusing to run pip on it"
echo "$prog: installing ixpscamper and its dependencies"
PIP_CACHE_DIR=${PIP_CACHE_DIR:-$work/pip-cache} \
    "$target/bin/python" -m pip install -q --disable-pip-version-check --no-compile "$work/src" \
    || die "pip install failed"
# A record of the temporary source directory is no use to anyone.
rm -f "$target"/lib/python3*/site-packages/ixpscamper-*.dist-info/direct_url.json

# Under DESTDIR the venv names the staging path (shebangs, activate,
# pyvenv.cfg): point every such text file at its final place.
if [ -n "$destdir" ]; then
    "$target/bin/python" - "$target" "$venv" <<'EOF'
import os, sys
target, final = (p.encode() for p in sys.argv[1:3])
for root, dirs, files in os.walk(target):
    for name in files:
        path = os.path.join(root, name)
        if os.path.islink(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if target in data and b"\0" not in data:
            st = os.stat(path)
            with open(path, "wb") as f:
                f.write(data.replace(target, final))
            os.chmod(path, st.st_mode)
EOF
fi
# Byte-code compiled once here (the daemons cannot write below PREFIX),
# recording the final paths.
if [ -n "$destdir" ]; then
    "$target/bin/python" -m compileall -q -f -j0 -s "$destdir" -p / "$target/lib" >/dev/null
else
    "$target/bin/python" -m compileall -q -f -j0 "$target/lib" >/dev/null
fi
# twistd's plugin cache, for the same reason (otherwise each start logs that
# it cannot write it); it holds no paths.
"$target/bin/python" -c 'from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))'
plugins=$("$target/bin/python" -c 'import sys; from twisted.scripts.twistd import run; sys.argv[1:] = ["--help"]; run()' 2>&1 || true)
for p in ixp-remoted ixp-vp; do
    grep -qw -- "$p" <<<"$plugins" || die "twistd in $venv does not list the $p plugin"
done

# --- systemd, configuration, documentation ------------------------------------
install -d -m 0755 "$destdir$unitdir" "$destdir$sysusersdir" "$destdir$tmpfilesdir" "$destdir$docdir" "$destdir$confdir"
install -d -m 0700 "$destdir$confdir/tls"
for unit in ixp-remoted.service ixp-vp.service; do
    sed "s|/opt/ixpscamper/|$prefix/|g" "systemd/$unit" >"$work/$unit"
    install -m 0644 "$work/$unit" "$destdir$unitdir/$unit"
done
install -m 0644 systemd/ixpscamper.sysusers "$destdir$sysusersdir/ixpscamper.conf"
install -m 0644 systemd/ixpscamper.tmpfiles "$destdir$tmpfilesdir/ixpscamper.conf"
install -m 0644 README.md docs/*.md LICENSE etc/grafana-ixpscamper.json "$destdir$docdir/"
mandir=/usr/share/man
install -d -m 0755 "$destdir$mandir/man1" "$destdir$mandir/man8"
for page in man/*.1 man/*.8; do
    gzip -9n <"$page" >"$work/$(basename "$page").gz"
    install -m 0644 "$work/$(basename "$page").gz" "$destdir$mandir/man${page##*.}/"
done
for conf in etc/*.toml; do
    dest=$destdir$confdir/$(basename "$conf")
    if [ -e "$dest" ] && ! cmp -s "$conf" "$dest"; then
        # The operator's settings win, as with a Debian conffile.
        install -m 0644 "$conf" "$dest.dist"
        echo "$prog: kept the changed $confdir/$(basename "$conf"); the new one is $confdir/$(basename "$conf").dist"
    else
        install -m 0644 "$conf" "$dest"
    fi
done

if [ -n "$destdir" ]; then
    echo "$prog: installed below $destdir"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    systemd-sysusers ixpscamper.conf
    systemd-tmpfiles --create ixpscamper.conf
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
fi
cat <<EOF
$prog: installed in $prefix.  Next:
  edit $confdir/ixp-remoted.toml or $confdir/ixp-vp.toml (systemctl reload applies log-level
  and rates; other keys need a restart)
  VP with TLS: put controller-ca.pem, vp.pem, vp.key (root, 0600) in $confdir/tls/
  systemctl enable --now ixp-remoted     # controller
  systemctl enable --now ixp-vp          # vantage point
  (after an upgrade: systemctl restart ixp-remoted ixp-vp)
EOF
