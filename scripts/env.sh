# Shared settings for the scripts (sourced, not run).
# Build outputs live outside the clone by default so repeated runs on one
# machine reuse compiled dependencies; any empty directory works too.
: "${RELAY_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/sub2api-cn-relay-manager}"
export RELAY_CACHE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$RELAY_CACHE/target}"
export FRONT_TARGET_DIR="${FRONT_TARGET_DIR:-$RELAY_CACHE/front}"
export RELAY_TOOLS="${RELAY_TOOLS:-$RELAY_CACHE/tools}"
export PATH="$RELAY_TOOLS/bin:$RELAY_TOOLS/node_modules/.bin:$HOME/.cargo/bin:$PATH"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export SITE_DIR="$ROOT/target/site"
log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }
