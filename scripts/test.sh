#!/usr/bin/env bash
# Installs the test prerequisites and runs every test: formatting, clippy (native and wasm32),
# unit tests, the CLI on real files, the release build, and the end-to-end browser tests in
# Debian's headless Chromium with and without WebGPU.
source "$(dirname "$0")/common.sh"
ensure_build_tools
ensure_test_tools
cd "$ROOT"

log "cargo fmt --check"
cargo fmt --all --check

log "clippy (native)"
# With the wgpu feature, so the GPU training path (`--device wgpu`) is compiled and linted too.
cargo clippy --workspace --all-targets --locked --features synthscope-cli/wgpu -- -D warnings

log "clippy (wasm32: the web app and the core crates)"
cargo clippy --target wasm32-unknown-unknown --locked \
  -p synthscope-web -p synthscope-synth -p synthscope-imaging -p synthscope-models -p synthscope-labels -- -D warnings

# Tests build in the release profile: it shares every dependency with the release CLI below (one
# build of burn instead of two on a cold machine), and training smoke tests run faster.
log "unit and integration tests"
cargo test --workspace --locked --release

log "release build of the CLI"
cargo build --release --locked -p synthscope-cli
export SYNTHSCOPE_BIN="$CARGO_TARGET_DIR/release/synthscope"

# The deployable build (relative URLs, scripts/build-site.sh): the end-to-end tests serve it at
# the root and, in deploy.test.mjs, under a sub-path.
log "release build of the web app (trunk)"
DIST="$CARGO_TARGET_DIR/synthscope-dist"
trunk build --release --public-url ./ --dist "$DIST"
export SYNTHSCOPE_DIST="$DIST"

log "end-to-end tests in headless Chromium"
(cd tests/e2e && node --test --test-concurrency=1)

log "all tests passed"
