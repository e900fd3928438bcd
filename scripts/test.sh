#!/usr/bin/env bash
# Builds dtune and runs every test: the README's test command, and what CI runs (.ci/run).
#   bash scripts/test.sh            # setup (idempotent) + build + ctest + fuzzers
# Environment: BUILD_DIR (default build), JOBS (default: cores), CTEST_ARGS (extra ctest flags),
# FUZZ_SECONDS (default 20 per harness; 0 skips the fuzz stage, scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
export BUILD_DIR JOBS
start=$(date +%s)
bash scripts/build.sh
echo "test.sh: build took $(( $(date +%s) - start )) s"
# MPI tests oversubscribe this machine's cores; OpenMPI refuses to run as root without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" ${CTEST_ARGS:-}
# The libFuzzer harnesses (clang, ASan + UBSan, their own build folder) for a bounded time each.
if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  bash scripts/fuzz.sh
fi
