#!/usr/bin/env bash
# Builds (release) and serves the dashboard. Extra arguments go to the
# binary: `scripts/run.sh demo` serves it with a fake host to click through.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
# The server's build needs nothing setup installs: it starts now and runs
# next to the tools' install and the front end's build (on two cores each
# fills the other's idle time: a build's last crates compile on one core).
mkdir -p "$RELAY_CACHE"
server_log="$RELAY_CACHE/server-build.log"
bash scripts/build.sh --release --only server >"$server_log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
bash scripts/setup.sh
bash scripts/build.sh --release --only front
log "server (release): waiting for its build (output: $server_log)"
if ! wait "$server"; then
  tail -n 40 "$server_log" >&2
  die "the server build failed (whole output: $server_log)"
fi
trap - EXIT
export DASHBOARD_SITE_ROOT="${DASHBOARD_SITE_ROOT:-$SITE_DIR}"
exec "$CARGO_TARGET_DIR/release/dashboard" "$@"
