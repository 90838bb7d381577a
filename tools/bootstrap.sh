# Sourced by ./mailprobe and ./run-tests: make sure .venv holds mailprobe and its test tools.
# Installs python3-venv with apt when Debian's python3 lacks it (as root), then the package
# (editable, with the "test" and "dask" extras) from PyPI. Re-installs when pyproject.toml changes.
set -euo pipefail
MAILPROBE_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MAILPROBE_VENV:-$MAILPROBE_HOME/.venv}"
PYTHON="${PYTHON:-python3}"

_mp_log() { printf 'bootstrap: %s\n' "$*" >&2; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  _mp_log "mailprobe needs Python >= 3.11 as '$PYTHON' (set PYTHON=/path/to/python3.11)"
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      _mp_log "installing python3-venv with apt-get"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv "$VENV"
    else
      _mp_log "'$PYTHON -m venv' failed: install your distribution's python3-venv package"
      exit 2
    fi
  fi
fi
STAMP="$VENV/.mailprobe-installed"
if [ ! -f "$STAMP" ] || [ "$MAILPROBE_HOME/pyproject.toml" -nt "$STAMP" ]; then
  _mp_log "installing mailprobe and its Python dependencies into $VENV"
  # pip's and the build backend's chatter goes to a log, shown only when the install fails.
  PIP_LOG="$VENV/.mailprobe-pip.log"
  if ! { "$VENV/bin/python" -m pip install -q --upgrade pip &&
         "$VENV/bin/python" -m pip install -q -e "$MAILPROBE_HOME[test,dask]"; } >"$PIP_LOG" 2>&1; then
    cat "$PIP_LOG" >&2
    _mp_log "installing the Python dependencies failed (the log above, kept in $PIP_LOG)"
    exit 2
  fi
  touch "$STAMP"
fi
# The tools that findings' reproduce lines use, from Debian: swaks (also the smtp.swaks probe;
# without it that probe is skipped), nc (netcat-openbsd: the plaintext VRFY/EXPN and
# capability lines), dig (dnsutils: every DNS finding's line) and curl (the MTA-STS policy and
# BIMI logo fetches). Installed with apt as root, tried once per venv; a failure never stops
# the bootstrap.
REPRO_TRIED="$VENV/.mailprobe-repro-tools-3-apt-tried"
_mp_missing=()
command -v swaks >/dev/null 2>&1 || _mp_missing+=(swaks)
command -v nc >/dev/null 2>&1 || _mp_missing+=(netcat-openbsd)
command -v dig >/dev/null 2>&1 || _mp_missing+=(dnsutils)
command -v curl >/dev/null 2>&1 || _mp_missing+=(curl)
if [ "${#_mp_missing[@]}" -gt 0 ] && [ ! -f "$REPRO_TRIED" ] \
  && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  touch "$REPRO_TRIED"
  _mp_log "installing ${_mp_missing[*]} with apt-get (reproduce lines, the smtp.swaks probe)"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${_mp_missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${_mp_missing[@]}" >/dev/null 2>&1; }; }; then
    _mp_log "could not install ${_mp_missing[*]}; smtp.swaks is skipped without swaks"
  fi
fi
