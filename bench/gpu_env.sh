# shellcheck shell=bash
# Sourced by bench/gpu.sh and bench/gpu_carry.sh --check (not run): dtune_env sets the
# environment under which the carried dtune (bin/dtune of .carry/dtune-carry.tar.gz, made by
# bench/gpu_carry.sh) runs on a machine without OpenMPI, HDF5 or Boost. Call it in a subshell, so
# that python processes keep their own libraries:
#   ( dtune_env /tmp/dtune-carry "$site_packages" && exec /tmp/dtune-carry/bin/dtune ... )
#
#   dtune_env CARRY SITE_PACKAGES [compat]
#     CARRY          the folder the archive was unpacked into
#     SITE_PACKAGES  the site-packages holding torch/ and nvidia/ (the device's torch 2.11 wheel)
#     compat         also put CARRY/compat (libstdc++, libgcc_s) on the path: for a system
#                    libstdc++ older than the one dtune was linked against
dtune_env() {
  local carry site compat path d
  carry=$(cd "$1" && pwd)
  site=$2
  compat=${3:-}
  # Carried libraries first, then libtorch/libc10 and the CUDA, cuDNN, NCCL libraries of the
  # wheel (torch/lib's own RUNPATH finds nvidia/* too, but dtune itself needs libcudart, libnccl).
  path="$carry/lib"
  [ -n "$compat" ] && path="$path:$carry/compat"
  path="$path:$site/torch/lib"
  for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && path="$path:$d"; done
  export LD_LIBRARY_PATH="$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # OpenMPI looks for its MCA plugins and help texts under its build-time paths
  # (/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3, /usr/share/openmpi): use the carried copies.
  # Without OPAL_PKGLIBDIR, MPI_Init fails (no plugins); without OPAL_PKGDATADIR, errors print
  # "couldn't open the help file" instead of the message.
  export OPAL_PREFIX="$carry/ompi" OPAL_LIBDIR="$carry/lib" OPAL_PKGLIBDIR="$carry/ompi/lib/openmpi3"
  export OPAL_DATADIR="$carry/ompi/share" OPAL_PKGDATADIR="$carry/ompi/share/openmpi"
  export OPAL_SYSCONFDIR="$carry/ompi/etc"
  # One process, no mpirun: a singleton MPI_Init. Isolated: it forks no orted daemon (which would
  # need orted and an ssh/rsh agent on the PATH); world size 1, MPI_Bcast of the NCCL id is local.
  export OMPI_MCA_ess_singleton_isolated=1
  # Only shared memory and self: no network, InfiniBand or UCX probing on a one-GPU machine.
  export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1 OMPI_MCA_mtl=^ofi,psm,psm2 OMPI_MCA_osc=^ucx
  # The device runs commands as root.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
}
