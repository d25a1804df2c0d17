#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, lint, type-check/build, then every
# test against real SQLite and real PostgreSQL. PostgreSQL is the server named by
# CONTINUUM_TEST_DATABASE_URL, or a throwaway one started (and removed) here.
# Extra arguments are passed to node --test (e.g. --test-name-pattern=quota); test files
# among them (test/migration.test.ts, or their built .js) run instead of the whole suite.
# Test files run one at a time: several boot real VMs under TCG on two cores, and the
# self-healing test holds a 30-second bound that CPU contention would make flaky.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
npx --no-install biome check --diagnostic-level=error .

pg_dir=""
cleanup() { if [ -n "$pg_dir" ]; then bash scripts/throwaway-postgres.sh stop "$pg_dir"; fi; }
trap cleanup EXIT
if [ -z "${CONTINUUM_TEST_DATABASE_URL:-}" ]; then
  pg_err=$(mktemp)
  CONTINUUM_TEST_DATABASE_URL=$(bash scripts/throwaway-postgres.sh start 2>"$pg_err") || { cat "$pg_err" >&2; exit 1; }
  pg_dir=$(tail -1 "$pg_err")
  rm -f "$pg_err"
  echo "[test] throwaway PostgreSQL at $CONTINUUM_TEST_DATABASE_URL" >&2
fi
export CONTINUUM_TEST_DATABASE_URL

files=()
args=()
for a in "$@"; do
  case "$a" in
    *.test.ts) files+=("dist/${a%.ts}.js") ;;
    *.test.js) files+=("$a") ;;
    *) args+=("$a") ;;
  esac
done
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "no such test file: $f (test files are test/*.test.ts and src/**/*.test.ts)" >&2; exit 2; }
done
if [ ${#files[@]} -eq 0 ]; then mapfile -t files < <(find dist -name '*.test.js' | sort); fi
tap=$(mktemp)
status=0
node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "${args[@]}" "${files[@]}" || status=$?
pass=$(grep -E '^# pass ' "$tap" | awk '{print $3}')
fail=$(grep -E '^# fail ' "$tap" | awk '{print $3}')
skipped=$(grep -E '^# skipped ' "$tap" | awk '{print $3}')
rm -f "$tap"
echo "${pass:-0} passed, ${fail:-0} failed, ${skipped:-0} skipped"
exit "$status"
