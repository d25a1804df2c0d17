#!/usr/bin/env bash
# Sets everything up, then runs Continuum on its embedded default (SQLite in
# ~/.local/share/continuum). Arguments go to `continuum server`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec node dist/src/cli/main.js server "$@"
