#!/usr/bin/env bash
# `npm test`: type-check, then every test/**/*.test.ts with node's test runner.
#
# Unit tests run in parallel; integration tests (test/integration/) one file at a time,
# because they share Redis, PostgreSQL and the machine's CPU with real daemons.
# Integration suites whose prerequisites are missing are skipped locally and listed at
# the end ("Skipped suites:"); under CI=true they fail instead (test/support/requirements.ts).
# Exit code: non-zero if type-checking or any test failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -d node_modules ]; then
  npm install || exit $?
fi

npx tsc --noEmit -p . || exit $?

report_dir="$(mktemp -d "${TMPDIR:-/tmp}/fumidai-test.XXXXXX")"
trap 'rm -rf "$report_dir"' EXIT
export FUMIDAI_SKIP_REPORT="$report_dir/skipped.txt"
: >"$FUMIDAI_SKIP_REPORT"

# Node 20's --test does not expand globs itself.
mapfile -t unit_files < <(find test -name '*.test.ts' -not -path 'test/integration/*' -not -path '*/node_modules/*' | sort)
mapfile -t integration_files < <(find test/integration -name '*.test.ts' -not -path '*/node_modules/*' 2>/dev/null | sort)

# Each run reports to the terminal (spec) and to a TAP file, from which the totals of
# both runs are added up into one closing line.
reporters=(--test-reporter=spec --test-reporter-destination=stdout)
status=0
if [ "${#unit_files[@]}" -gt 0 ]; then
  node --import tsx --test "${reporters[@]}" --test-reporter=tap --test-reporter-destination="$report_dir/unit.tap" "${unit_files[@]}" || status=$?
fi
if [ "${#integration_files[@]}" -gt 0 ]; then
  node --import tsx --test --test-concurrency=1 "${reporters[@]}" --test-reporter=tap --test-reporter-destination="$report_dir/integration.tap" "${integration_files[@]}"
  rc=$?
  [ "$status" -eq 0 ] && status=$rc
fi

if [ -s "$FUMIDAI_SKIP_REPORT" ]; then
  echo
  echo "Skipped suites:"
  awk '!seen[$0]++ { print "  " $0 }' "$FUMIDAI_SKIP_REPORT"
fi

total() { # name: sums "# name N" over the TAP files
  cat "$report_dir"/*.tap 2>/dev/null | awk -v k="# $1" 'index($0, k " ") == 1 { n += $3 } END { print n + 0 }'
}
echo
echo "tests: $(total pass) passed, $(total fail) failed, $(total skipped) skipped"

exit "$status"
