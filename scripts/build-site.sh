#!/usr/bin/env bash
# Builds the app as a static site that works from any path on any static host (for example
# https://example.org/synthscope/): every URL in it is relative. Usage:
#   ./scripts/build-site.sh [OUT_DIR]     (default: site/ in the clone)
# Upload the folder's contents as they are; docs/deploy.md says what the host must do.
source "$(dirname "$0")/common.sh"
ensure_build_tools
cd "$ROOT"
OUT="${1:-$ROOT/site}"
log "release build of the web app for any sub-path into $OUT"
trunk build --release --public-url ./ --dist "$OUT"
log "wrote $(du -sh "$OUT" | cut -f1) to $OUT: upload its contents to the host (docs/deploy.md)"
