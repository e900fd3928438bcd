#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on the GPU machine and the tree does not hold into
# .carry/dtune-carry.tar.gz (.carry/ is git-ignored): the dtune binary built here and the shared
# libraries the device image lacks (OpenMPI with its MCA plugins and help texts, PMIx, HDF5,
# Boost, PCRE2, utf8proc, and all their own dependencies). dtune then starts as an isolated MPI
# singleton (no mpirun, no orted daemon; bench/gpu_env.sh). Run it HERE, before the device
# `run` call that names .carry in `carry`. About 17 MB packed (43 MB unpacked); the tree that
# travels must stay under 64 MiB.
#
#   bash bench/gpu_carry.sh            # DTUNE=path/to/dtune carries another binary
#   bash bench/gpu_carry.sh --check    # then prove the pack alone runs dtune (below)
#
# Not carried, because the device brings its own: glibc (libc, libm, libdl, libpthread, librt,
# libutil, libresolv, ld.so), and libtorch/libc10 with the CUDA, cuDNN and NCCL libraries (the
# device's torch 2.11 cu130 wheel; bench/gpu_env.sh puts its torch/lib and nvidia/*/lib on
# LD_LIBRARY_PATH). libstdc++ and libgcc_s go in compat/, used only when the device's libstdc++
# is older than this machine's (gpu.sh decides with ldd).
#
# --check unpacks the archive into a temporary folder and runs `dtune train` (2 steps, tiny model,
# CPU) from it in a mount namespace where /usr/lib/x86_64-linux-gnu (hence /lib) holds only
# glibc, libstdc++ and libgcc_s, and /usr/bin, /usr/local/cuda, /usr/share/openmpi and
# /etc/openmpi are empty: a machine without OpenMPI, HDF5, Boost or a CUDA toolkit, where the
# MPI singleton can only use the carried plugins. Needs root (unshare -m) and .venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src_bin="${DTUNE:-$root/build/bin/dtune}"
out="$root/.carry"
arch_lib=/usr/lib/x86_64-linux-gnu

[ -x "$src_bin" ] || { echo "gpu_carry: no dtune binary at $src_bin (build it, or set DTUNE=)" >&2; exit 1; }
info=$("$src_bin" info)
grep -q '^CUDA/NCCL *CUDA' <<< "$info" || {
  echo "gpu_carry: $src_bin was built without the CUDA/NCCL path (see dtune info); build with a CUDA toolkit" >&2
  exit 1; }

stage=$(mktemp -d /tmp/dtune-carry-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,compat,ompi/etc,ompi/lib/openmpi3,ompi/share/openmpi}
cp "$src_bin" "$stage/bin/dtune"
cp "$arch_lib"/openmpi/lib/openmpi3/*.so "$stage/ompi/lib/openmpi3/"
cp -r /usr/share/openmpi/. "$stage/ompi/share/openmpi/"

# Every shared object these load, as this machine's loader resolves them, sorted into carried or not.
declare -A seen=()
for obj in "$stage/bin/dtune" "$stage"/ompi/lib/openmpi3/*.so; do
  while read -r path; do seen["$path"]=1; done < <(ldd "$obj" | awk '$2 == "=>" && $3 ~ /^\// {print $3}')
done
for path in "${!seen[@]}"; do
  name="$(basename "$path")"
  case "$path" in */site-packages/*|/usr/local/cuda*) continue ;; esac  # the device's torch wheel
  case "$name" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libutil.so.*|libresolv.so.*|ld-linux*) ;;
    libstdc++.so.*|libgcc_s.so.*) cp -L "$path" "$stage/compat/$name" ;;
    *) cp -L "$path" "$stage/lib/$name" ;;
  esac
done

# What the carried objects need from the device's glibc and libstdc++.
need_glibc=$(find "$stage" -type f \( -name '*.so*' -o -perm -u+x \) -exec objdump -T {} \; 2>/dev/null \
  | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u | tail -1)
need_glibcxx=$(objdump -T "$stage/bin/dtune" | grep -o 'GLIBCXX_3\.4\.[0-9]*' | sort -t. -k3 -n -u | tail -1)
dirty=$(git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt cmake 2>/dev/null || echo "+uncommitted changes")
{
  echo "dtune_source=$src_bin ($(date -u -r "$src_bin" +%Y-%m-%dT%H:%M:%SZ))"
  echo "dtune_sha256=$(sha256sum "$stage/bin/dtune" | cut -d' ' -f1)"
  echo "tree_head=$(git -C "$root" rev-parse --short HEAD)$dirty"
  echo "made_on=$(. /etc/os-release; echo "$PRETTY_NAME"), glibc $(ldd --version | head -1 | awk '{print $NF}')"
  echo "made_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "needs_glibc=$need_glibc"
  echo "needs_glibcxx=$need_glibcxx"
  "$src_bin" info | sed -n 's/^libtorch *\(.*\)/built_against_libtorch=\1/p; s/^CUDA\/NCCL *\(.*\)/built_with=\1/p'
  # What metrics.jsonl's peak_mem_gib means on a GPU: the CUDA caching allocator's peak
  # (dist::peak_memory_gib, since the uncommitted change of 2026-11-28) or, before, the process RSS.
  if [ "$(nm -C "$src_bin" 2>/dev/null | grep -c 'dist::peak_memory_gib')" -gt 0 ]; then echo "peak_mem_gib=cuda_allocator"
  else echo "peak_mem_gib=rss"; fi
} > "$stage/MANIFEST"

rm -rf "$out"
mkdir -p "$out"
tar -C "$stage" -czf "$out/dtune-carry.tar.gz" .
cp "$stage/MANIFEST" "$out/MANIFEST"
echo "gpu_carry: $out/dtune-carry.tar.gz: $(du -h "$out/dtune-carry.tar.gz" | cut -f1) ($(du -sh "$stage" | cut -f1) unpacked," \
     "$(ls "$stage/lib" | wc -l) libraries, $(ls "$stage/ompi/lib/openmpi3" | wc -l) OpenMPI plugins)"
cat "$out/MANIFEST"

[ "${1:-}" = "--check" ] || exit 0

# ---- --check: dtune from the unpacked archive alone, the system's libraries hidden -----------
py="$root/.venv/bin/python"
venv_site=$(echo "$root"/.venv/lib/python3*/site-packages)
work=$(mktemp -d /tmp/gpu_carry_check.XXXXXX)
mkdir -p "$work/carry" "$work/minlib" "$work/empty"
tar -C "$work/carry" -xzf "$out/dtune-carry.tar.gz"
"$py" "$root/bench/gpu_make.py" model --config "$root/bench/model-configs/deepseek-r1-distill-llama-8b.json" \
  --tiny --dtype float32 --device cpu --output "$work/model" >/dev/null
"$py" "$root/bench/gpu_make.py" data --kind packed --rows 4 --seq 64 --vocab 512 --output "$work/data.h5" >/dev/null
for pat in 'libc.so*' 'libm.so*' 'libdl.so*' 'libpthread.so*' 'librt.so*' 'libutil.so*' 'libresolv.so*' \
           'ld-linux-x86-64.so*' 'libstdc++.so.6*' 'libgcc_s.so*' 'libtinfo.so*'; do
  # shellcheck disable=SC2086  # $pat is a glob on purpose
  cp -a "$arch_lib"/$pat "$work/minlib/"
done
# bash and mount (a copy, as /usr/bin goes first) are loaded before the mounts; after them bash
# runs builtins only, and dtune finds nothing but glibc, libstdc++, the archive and the torch wheel.
cp /usr/bin/mount "$work/mount"
cat > "$work/inside.sh" <<EOF
set -e
for d in /usr/local/cuda /usr/share/openmpi /etc/openmpi /usr/bin; do
  if [ -e \$d ]; then "$work/mount" --bind "$work/empty" \$d; fi
done
"$work/mount" --bind "$work/minlib" $arch_lib
source "$root/bench/gpu_env.sh"
dtune_env "$work/carry" "$venv_site"
exec "$work/carry/bin/dtune" train --model.path="$work/model" --data.path="$work/data.h5" \
  --data.packing=true --data.pack_length=64 --data.micro_batch_size=2 --data.shuffle=false \
  --train.device=auto --train.precision=fp32 --train.threads=1 --train.max_steps=2 \
  --train.gradient_accumulation_steps=1 --train.eval_every=0 --checkpoint.output_dir="$work/run" \
  --generate.enabled=false --log.tensorboard=false --log.progress=off
EOF
if unshare -m bash "$work/inside.sh" > "$work/check.log" 2>&1 && [ "$(grep -c '"train"' "$work/run/metrics.jsonl")" = 2 ]; then
  echo "gpu_carry --check: OK: dtune from the archive trained 2 steps with only glibc and libstdc++ from the system"
  grep -E "communicator|done:" "$work/check.log" | sed 's/^/  /'
  rm -rf "$work"
else
  echo "gpu_carry --check: FAILED; log $work/check.log:"
  tail -30 "$work/check.log"
  exit 1
fi
