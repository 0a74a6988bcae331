# Shared by scripts/run.sh and scripts/test.sh (sourced, not run): install what is missing on a fresh Debian
# machine, as root or through sudo, and pick the Python to use in $PY.

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

# apt_install PKG...: install the Debian packages given, with one `apt-get update`, only when some are given.
apt_install() {
  [ $# -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 || { echo "error: missing $*, and apt-get is not available" >&2; return 1; }
  echo "Installing Debian packages: $*" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Python itself: 3.11 or newer, with pip and venv.
_py_missing=()
command -v python3 >/dev/null 2>&1 || _py_missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || _py_missing+=(python3-pip)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || _py_missing+=(python3-venv)
apt_install "${_py_missing[@]}"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "error: referral-plugin needs Python 3.11 or newer; python3 is $(python3 --version)" >&2; exit 1; }

# Debian's own Python refuses `pip install` (PEP 668): use a virtualenv in .venv then; otherwise the current one.
PY=python3
if python3 -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)' \
   && [ -f "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  PY="$PWD/.venv/bin/python"
fi
export PY
