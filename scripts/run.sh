#!/usr/bin/env bash
# Sets everything up, then runs `continuum dev`: a whole federation on this machine
# (control plane on SQLite, three providers with agents, a demo VM). Arguments go to `continuum dev`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec node dist/src/cli/main.js dev "$@"
