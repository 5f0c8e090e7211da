#!/usr/bin/env bash
# Installs whatever is missing (wasm32 target, trunk, wasm-bindgen-cli, wasm-opt), builds the
# web app in release mode and serves it on http://127.0.0.1:8080 (PORT=... to change).
source "$(dirname "$0")/common.sh"
ensure_build_tools
cd "$ROOT"
log "building and serving the app on http://127.0.0.1:${PORT:-8080} (Ctrl-C to stop)"
exec trunk serve --release --address 127.0.0.1 --port "${PORT:-8080}"
