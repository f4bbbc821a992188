#!/usr/bin/env bash
# Builds the front end (wasm + bindings + css + assets) into target/site and
# the server binary. `--release` for an optimised build (what `run` uses).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

profile=dev; wasm_profile=dev; out=debug; wasm_out=debug
if [[ "${1:-}" == "--release" ]]; then
  profile=release; wasm_profile=wasm-release; out=release; wasm_out=wasm-release
fi

# Extra flags for the wasm build when the target comes from Debian's
# rust-web packages instead of rustup (see setup.sh).
wasm_cargo=(cargo)
if [[ -f "$RELAY_TOOLS/wasm-route" ]] && [[ "$(cat "$RELAY_TOOLS/wasm-route")" == debian ]]; then
  export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc
  wasm_cargo=(/usr/bin/cargo)
  extra=(-Zbuild-std=std,panic_abort)
else
  extra=()
fi

log "front end: wasm ($wasm_profile)"
"${wasm_cargo[@]}" build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
  --profile "$wasm_profile" --target-dir "$FRONT_TARGET_DIR" --locked "${extra[@]}"

log "front end: bindings"
rm -rf "$SITE_DIR" && mkdir -p "$SITE_DIR/pkg"
wasm-bindgen --target web --no-typescript --out-name dashboard --out-dir "$SITE_DIR/pkg" \
  "$FRONT_TARGET_DIR/wasm32-unknown-unknown/$wasm_out/app.wasm"
if [[ "$profile" == release ]] && command -v wasm-opt >/dev/null; then
  log "front end: wasm-opt -Oz"
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    -o "$SITE_DIR/pkg/dashboard_bg.wasm" "$SITE_DIR/pkg/dashboard_bg.wasm"
fi
# Leptos asks for `<name>.wasm` when LEPTOS_OUTPUT_NAME was set at compile
# time and `<name>_bg.wasm` otherwise; serve both names.
cp "$SITE_DIR/pkg/dashboard_bg.wasm" "$SITE_DIR/pkg/dashboard.wasm"
cp style/main.css "$SITE_DIR/pkg/dashboard.css"
cp -r public/. "$SITE_DIR/"

log "server ($profile)"
cargo build -p app --bin dashboard --features ssr --profile "$profile" --locked
log "built: $CARGO_TARGET_DIR/$out/dashboard and $SITE_DIR"
