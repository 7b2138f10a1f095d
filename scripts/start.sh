#!/usr/bin/env bash
# `npm start`: installs the npm dependencies on first use, then runs `fumidai serve`
# with the embedded defaults (or the config named by --config / FUMIDAI_CONFIG).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund
fi
exec node bin/fumidai.js serve "$@"
