#!/usr/bin/env bash
# Builds the front end (wasm + bindings + css + assets) into target/site and
# the server binary. `--release` for an optimised build (what `run` uses).
#
# Front-end files get a content hash in their names (`pkg/dashboard.<hash>.*`,
# served `Cache-Control: immutable`) and are compressed here (gzip, and
# brotli when a compressor is found), not per request. The bindings and
# wasm-opt steps are cached by their input's hash: with nothing changed a
# rebuild copies the cached result.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

profile=dev; wasm_profile=dev; out=debug; wasm_out=debug
only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --release) profile=release; wasm_profile=wasm-release; out=release; wasm_out=wasm-release ;;
    # `--only front` or `--only server`: one half (run.sh builds both at once).
    --only) only="${2:-}"; shift ;;
    *) die "unknown argument: $1 (expected --release, --only front|server)" ;;
  esac
  shift
done
[[ -z "$only" || "$only" == front || "$only" == server ]] || die "--only takes front or server, not '$only'"

build_server() {
  if [[ ! -x "$CARGO_TARGET_DIR/$out/dashboard" ]]; then
    log "server ($profile): first build of the server binary on this cache, several minutes"
  else
    log "server ($profile)"
  fi
  cargo build -p app --bin dashboard --features ssr --profile "$profile" --locked
}
if [[ "$only" == server ]]; then
  build_server
  log "built: $CARGO_TARGET_DIR/$out/dashboard"
  exit 0
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

# A cold cache compiles every dependency twice (wasm and server): say so,
# and roughly how long, so the first command does not look hung.
if [[ ! -d "$FRONT_TARGET_DIR/wasm32-unknown-unknown/$wasm_out" ]]; then
  if [[ $profile == release ]]; then
    log "first $profile build on this cache: compiling every dependency for the front end and the server — about 10 minutes on 2 cores; later starts take seconds"
  else
    log "first $profile build on this cache: compiling every dependency for the front end, then the server — several minutes"
  fi
fi
log "front end: wasm ($wasm_profile)"
"${wasm_cargo[@]}" build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
  --profile "$wasm_profile" --target-dir "$FRONT_TARGET_DIR" --locked "${extra[@]}"

wasm_in="$FRONT_TARGET_DIR/wasm32-unknown-unknown/$wasm_out/app.wasm"
opt=0
if [[ "$profile" == release ]] && command -v wasm-opt >/dev/null; then opt=1; fi
key=$( { sha256sum "$wasm_in" style/main.css | cut -d' ' -f1; wasm-bindgen --version; echo "opt=$opt";
         if [[ $opt -eq 1 ]]; then wasm-opt --version; fi; } | sha256sum | cut -c1-16)
cached="$RELAY_CACHE/pkg/$key"

# brotli -q 11 of $1 into $1.br, with whichever compressor this machine has.
brotli_file() {
  if command -v brotli >/dev/null; then brotli -q 11 -f -k "$1"
  elif command -v node >/dev/null; then
    node -e 'const z=require("zlib"),f=require("fs"),p=process.argv[1];
      f.writeFileSync(p+".br", z.brotliCompressSync(f.readFileSync(p), {params: {[z.constants.BROTLI_PARAM_QUALITY]: 11}}))' "$1"
  else return 1; fi
}

if [[ -f "$cached/output-name" ]]; then
  log "front end: unchanged, using the cached bindings ($key)"
else
  log "front end: bindings"
  tmp="$cached.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp/gen"
  wasm-bindgen --target web --no-typescript --out-name dashboard --out-dir "$tmp/gen" "$wasm_in"
  if [[ $opt -eq 1 ]]; then
    log "front end: wasm-opt -Oz"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      -o "$tmp/gen/dashboard_bg.wasm" "$tmp/gen/dashboard_bg.wasm"
  fi
  cp style/main.css "$tmp/gen/dashboard.css"
  hash=$(cat "$tmp/gen/dashboard.js" "$tmp/gen/dashboard_bg.wasm" "$tmp/gen/dashboard.css" | sha256sum | cut -c1-16)
  name="dashboard.$hash"
  cp "$tmp/gen/dashboard.js" "$tmp/$name.js"
  cp "$tmp/gen/dashboard.css" "$tmp/$name.css"
  # Leptos asks for `<name>.wasm` when LEPTOS_OUTPUT_NAME was set at compile
  # time and `<name>_bg.wasm` otherwise; serve both names.
  cp "$tmp/gen/dashboard_bg.wasm" "$tmp/${name}_bg.wasm"
  cp "$tmp/gen/dashboard_bg.wasm" "$tmp/$name.wasm"
  rm -rf "$tmp/gen"
  for f in "$tmp"/*; do
    gzip -9 -k -n "$f"
    brotli_file "$f" || { log "no brotli compressor (brotli or node): gzip only"; }
  done
  echo "$name" > "$tmp/output-name"
  rm -rf "$cached" && mv "$tmp" "$cached"
fi
rm -rf "$SITE_DIR" && mkdir -p "$SITE_DIR/pkg"
cp "$cached"/* "$SITE_DIR/pkg/"
cp -r public/. "$SITE_DIR/"
# Keep the four newest cached front ends (a debug and a release one, and the last before each).
touch "$cached"
ls -1t "$RELAY_CACHE/pkg" | grep -v '\.tmp\.' | tail -n +5 | while read -r old; do rm -rf "${RELAY_CACHE:?}/pkg/$old"; done

if [[ "$only" == front ]]; then
  log "built: $SITE_DIR"
  exit 0
fi
build_server
log "built: $CARGO_TARGET_DIR/$out/dashboard and $SITE_DIR"
