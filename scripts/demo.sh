#!/usr/bin/env bash
# Sets up (idempotent) and runs the main demo: train briefly on the duel sim, then play the real
# browser page through the screen (under a private Xvfb when there is no display).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec .venv/bin/hakisa duel demo "$@"
