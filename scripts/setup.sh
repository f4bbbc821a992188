#!/usr/bin/env bash
# Installs what a fresh machine lacks; safe to run again (each step checks
# first). `--e2e` also installs the browser and Playwright for end-to-end tests.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
mkdir -p "$RELAY_TOOLS/bin"

# One setup at a time per cache: a second copy (another clone, CI next to a
# running server build) waits here instead of installing the same tools at
# once and failing half-way.
exec 9>"$RELAY_TOOLS/.setup.lock"
if command -v flock >/dev/null; then
  flock -n 9 || { log "another setup is running on this cache; waiting for it"; flock 9; }
fi

want_e2e=0
[[ "${1:-}" == "--e2e" ]] && want_e2e=1

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@"
}

command -v cargo >/dev/null || die "Rust is not installed: install it with rustup (https://rustup.rs), then run this again"

# 1. The wasm32 target: rustup first; Debian's rust-web packages otherwise.
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo rustup > "$RELAY_TOOLS/wasm-route"
elif rustup target add wasm32-unknown-unknown; then
  echo rustup > "$RELAY_TOOLS/wasm-route"
else
  log "rustup could not add wasm32; using Debian's rustc-web to build std for wasm32"
  apt_install rustc-web cargo-web rust-web-src lld
  echo debian > "$RELAY_TOOLS/wasm-route"
fi
if [[ "$(cat "$RELAY_TOOLS/wasm-route")" == debian ]]; then
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
fi

# 2. wasm-bindgen CLI at exactly the version Cargo.lock pins (the CLI refuses
#    a wasm file from any other version). Without --locked: the CLI's own
#    lockfile pins a crate this registry lacks.
wb_version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
[[ -n "$wb_version" ]] || die "wasm-bindgen is not in Cargo.lock"
if [[ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]]; then
  log "installing wasm-bindgen-cli $wb_version (a few minutes, once)"
  # Its own build directory: `run.sh` builds the server in the main one at
  # the same time, and cargo would make one wait for the other. Unoptimised
  # (`--debug`, no debug info): it installs in half the time (53 s here) and
  # still turns the release wasm into the same bindings in 0.4 s (0.1 s
  # optimised); it runs only when the front end changed.
  CARGO_PROFILE_DEV_DEBUG=0 cargo install wasm-bindgen-cli --version "$wb_version" --root "$RELAY_TOOLS" --force \
    --debug --target-dir "$RELAY_CACHE/tools-build"
fi

# 3. wasm-opt for release builds (binaryen from npm; optional).
if ! command -v wasm-opt >/dev/null && command -v npm >/dev/null; then
  log "installing wasm-opt (npm binaryen)"
  npm install --silent --no-audit --no-fund --prefix "$RELAY_TOOLS" binaryen@132.0.0 || log "wasm-opt not installed; release wasm stays unoptimised"
fi

# 4. End-to-end: Debian's Chromium and Playwright's test runner (no browser download).
if [[ $want_e2e -eq 1 ]]; then
  if [[ ! -x /usr/bin/chromium ]]; then
    log "installing Chromium"
    apt_install chromium
  fi
  # Chinese pages in screenshots and in the browser tests need a CJK font
  # (without one every character renders as a box); a small one suffices.
  if command -v fc-list >/dev/null && [[ -z "$(fc-list :lang=zh 2>/dev/null)" ]]; then
    log "installing a CJK font (fonts-wqy-microhei) for Chinese pages"
    apt_install fonts-wqy-microhei || log "no CJK font installed: Chinese text in screenshots shows as boxes"
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  if [[ ! -x end2end/node_modules/.bin/playwright ]]; then
    log "installing Playwright test runner"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
fi
log "setup complete"
