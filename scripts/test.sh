#!/usr/bin/env bash
# Runs every check and test: format, lints (each feature set), unit and
# integration tests, then end-to-end tests in headless Chromium.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
start=$(date +%s)
step() { log "$1 (+$(( $(date +%s) - start ))s)"; }

bash scripts/setup.sh --e2e

step "format"
cargo fmt --all -- --check

step "lint: core and fake host"
cargo clippy --locked -p provisioning-core -p fakehost --all-targets -- -D warnings
step "lint: app (ssr)"
cargo clippy --locked -p app --features ssr --all-targets -- -D warnings
step "lint: app (hydrate, wasm32)"
cargo clippy --locked -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
  --target-dir "$FRONT_TARGET_DIR" -- -D warnings

step "tests: core and fake host"
cargo test --locked -p provisioning-core -p fakehost
step "tests: app (ssr)"
cargo test --locked -p app --features ssr

step "build for end-to-end tests"
bash scripts/build.sh
step "end-to-end tests"
(cd end2end && DASHBOARD_BIN="$CARGO_TARGET_DIR/debug/dashboard" DASHBOARD_SITE_ROOT="$SITE_DIR" npx playwright test)

step "all checks passed"
