#!/usr/bin/env bash
# Configures the build folder the one way both README commands use (Release, warnings as errors,
# as CI) and builds the given targets, or everything when none is given. The demo builds only
# build/bin/dtune; scripts/test.sh then reuses the same folder and objects and builds the rest.
#   bash scripts/build.sh [TARGET...]
# Environment: BUILD_DIR (default build), JOBS (default: cores).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDTUNE_WERROR=ON > "$BUILD_DIR.configure.log" 2>&1 \
  || { cat "$BUILD_DIR.configure.log"; exit 1; }
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$JOBS" "${targets[@]}"
