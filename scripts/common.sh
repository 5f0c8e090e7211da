# Shared by setup.sh, serve.sh and test.sh: paths and "install only what is missing".
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Build artefacts live outside the clone so fresh clones build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/synthscope/target}"
export PATH="$HOME/.cargo/bin:$PATH"
TRUNK_VERSION=0.21.14

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* with your package manager"
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The wasm-bindgen version pinned by Cargo.lock: trunk needs exactly this CLI version.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_build_tools() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION"; then
    log "installing trunk $TRUNK_VERSION (about 9 minutes on 2 cores, once)"
    cargo install trunk --version "$TRUNK_VERSION" --locked
  fi
  local wb; wb="$(wasm_bindgen_version)"
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb"; then
    log "installing wasm-bindgen-cli $wb (about 4 minutes, once)"
    cargo install wasm-bindgen-cli --version "$wb"
  fi
  # wasm-opt from npm's binaryen (Debian's binaryen 108 corrupts wasm-bindgen's reference-types
  # output). trunk finds it on PATH and never downloads one (Trunk.toml: offline = true).
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -x "$ROOT/tools/wasm-opt/node_modules/.bin/wasm-opt" ] || [ "$ROOT/tools/wasm-opt/package-lock.json" -nt "$ROOT/tools/wasm-opt/node_modules/.package-lock.json" ]; then
    log "installing wasm-opt (npm binaryen)"
    (cd "$ROOT/tools/wasm-opt" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  export PATH="$ROOT/tools/wasm-opt/node_modules/.bin:$PATH"
}

ensure_test_tools() {
  if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then
    log "installing Debian chromium for the browser tests"
    apt_install chromium chromium-driver
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -d "$ROOT/tests/e2e/node_modules/playwright-core" ] || [ "$ROOT/tests/e2e/package-lock.json" -nt "$ROOT/tests/e2e/node_modules/.package-lock.json" ]; then
    log "installing the end-to-end test packages (playwright-core, fflate)"
    (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
