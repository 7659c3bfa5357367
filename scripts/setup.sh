#!/usr/bin/env bash
# Idempotent setup for a fresh Debian/Python 3.11 box (or a desktop).
#   - system packages (xvfb, xdotool, chromium, chromium-driver, xjump, circuslinux, ...) with apt when root, else a hint;
#   - a virtualenv in .venv with the CPU torch wheel installed *first*, so no dependency can
#     drag in a multi-GB CUDA build;
#   - hakisa itself (editable) with the extras in HAKISA_EXTRAS (default: dev,retro,minari,ray,sweep,portable).
# A second run is a few hundred ms: it checks what is there and skips work guarded by a stamp.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="${HAKISA_EXTRAS:-dev,retro,minari,ray,sweep,portable}"
py="${PYTHON:-python3}"

# --- system packages --------------------------------------------------------------------------
# openbox: the window manager the portable backend needs on X11; xrandr: its pywinctl (pymonctl) exits without it
declare -A pkg_for=([Xvfb]=xvfb [xdotool]=xdotool [chromium]=chromium [chromedriver]=chromium-driver [xauth]=xauth
                    [openbox]=openbox [xrandr]=x11-xserver-utils)
missing=()
for bin in "${!pkg_for[@]}"; do command -v "$bin" >/dev/null 2>&1 || missing+=("${pkg_for[$bin]}"); done
# fonts make the page's HUD text legible; they are not needed for the canvas itself
[[ -d /usr/share/fonts/truetype/dejavu ]] || missing+=(fonts-dejavu-core)
# xjump and circuslinux: the zoo's desktop games (benchmarks/zoo/jump.json, circus.json), real X11 / SDL programs
# launched by their game files
[[ -x /usr/games/xjump ]] || missing+=(xjump)
[[ -x /usr/games/circuslinux ]] || missing+=(circuslinux)
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "[setup] apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] WARNING: missing system packages: ${missing[*]}"
    echo "[setup]   install them with: sudo apt-get install ${missing[*]}"
    echo "[setup]   (live-window features and browser tests need them; the simulator does not)"
  fi
fi

# --- python environment -------------------------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv"
  "$py" -m venv .venv
fi
vpy=.venv/bin/python
if ! "$vpy" -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0 (CPU) first"
  "$vpy" -m pip install -q --upgrade pip
  "$vpy" -m pip install -q "torch==2.13.0"
fi
stamp=".venv/.hakisa-stamp"
want="$(cat pyproject.toml | sha1sum | cut -c1-40) $extras"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "[setup] installing hakisa[$extras]"
  "$vpy" -m pip install -q -e ".[$extras]"
  echo "$want" >"$stamp"
fi
echo "[setup] ready: $root/.venv"
