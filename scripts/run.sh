#!/usr/bin/env bash
# Builds (release) and serves the dashboard. Extra arguments go to the
# binary: `scripts/run.sh demo` serves it with a fake host to click through.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh --release
export DASHBOARD_SITE_ROOT="${DASHBOARD_SITE_ROOT:-$SITE_DIR}"
exec "$CARGO_TARGET_DIR/release/dashboard" "$@"
