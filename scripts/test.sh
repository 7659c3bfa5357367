#!/usr/bin/env bash
# Sets up (idempotent), lints, and runs the default test suite. Slow tests: HAKISA_SLOW=1 or pytest -m slow.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
marker='not slow'
[[ "${HAKISA_SLOW:-0}" == 1 ]] && marker=''
.venv/bin/python -m ruff check hakisa tests scripts benchmarks   # lint first: a red line costs seconds, not the suite
exec .venv/bin/python -m pytest -m "$marker" "$@"
