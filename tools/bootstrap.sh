# Sourced by ./mailprobe and ./run-tests: make sure .venv holds mailprobe and its test tools.
# Installs python3-venv with apt when Debian's python3 lacks it (as root), then the package
# (editable, with the "test" extra) from PyPI. Re-installs when pyproject.toml changes.
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
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e "$MAILPROBE_HOME[test]"
  touch "$STAMP"
fi
# swaks (Debian package) for the smtp.swaks probe: installed with apt as root, tried once per
# venv; without it that probe is skipped, so a failure here never stops the bootstrap.
SWAKS_TRIED="$VENV/.mailprobe-swaks-apt-tried"
if ! command -v swaks >/dev/null 2>&1 && [ ! -f "$SWAKS_TRIED" ] \
  && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  touch "$SWAKS_TRIED"
  _mp_log "installing swaks with apt-get (for the smtp.swaks probe)"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swaks >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swaks >/dev/null 2>&1; }; }; then
    _mp_log "could not install swaks; the smtp.swaks probe will be skipped"
  fi
fi
