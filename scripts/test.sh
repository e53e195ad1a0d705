#!/usr/bin/env bash
# All tests: the Rust workspace (cargo test), then the addon built in debug
# mode and the jest suite against it. Fails when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
npx napi build --platform --js binding.js --dts binding.d.ts
npx tsc -p tsconfig.lib.json
# PostgreSQL + pgvector for the pgvector backend's tests (a pinned PyPI wheel;
# the tests start and stop their own server).
bash scripts/install-postgres.sh >/dev/null
npx jest --ci
