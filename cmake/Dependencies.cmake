# Third-party dependencies: Torch (libtorch from the pip wheel), MPI, HDF5 (C API), Boost,
# nlohmann-json, PCRE2, utf8proc, zlib, zstd, and optionally CUDA + NCCL.

# libtorch's config looks for the CUDA toolkit itself when the wheel was built with CUDA. Naming
# the target architectures skips its GPU-probing try_run, which fails on machines without a GPU
# (and with CMake < 3.26 + nvcc 13). dtune compiles no .cu files, so this only labels the build:
# 9.0 = Hopper (H100/H200); override with -DTORCH_CUDA_ARCH_LIST="8.0;9.0" or the env variable.
if(NOT TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "9.0")
endif()
find_package(Torch REQUIRED)
# Torch's INTERFACE flags carry -D_GLIBCXX_USE_CXX11_ABI and include dirs; its TORCH_CXX_FLAGS
# are already attached to the imported targets.

find_package(MPI REQUIRED COMPONENTS CXX)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options unit_test_framework)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
# .gz and .zst inputs of `dtune pretokenize` (src/data/byte_source.cpp): zlib1g-dev, libzstd-dev.
find_package(ZLIB REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
find_path(UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
find_library(UTF8PROC_LIBRARY utf8proc REQUIRED)
add_library(dtune_utf8proc INTERFACE)
target_include_directories(dtune_utf8proc SYSTEM INTERFACE ${UTF8PROC_INCLUDE_DIR})
target_link_libraries(dtune_utf8proc INTERFACE ${UTF8PROC_LIBRARY})

# CUDA + NCCL: compiled in whenever found; the binary still runs where no GPU exists.
set(DTUNE_HAVE_CUDA OFF)
if(DTUNE_WITH_CUDA)
  find_package(CUDAToolkit QUIET)
  # Prefer the NCCL that the torch wheel uses (nvidia-nccl-*), so one process holds one NCCL.
  file(GLOB _wheel_nccl "${DTUNE_VENV}/lib/python3*/site-packages/nvidia/nccl")
  if(_wheel_nccl)
    find_path(NCCL_INCLUDE_DIR nccl.h PATHS ${_wheel_nccl}/include NO_DEFAULT_PATH)
    find_library(NCCL_LIBRARY NAMES libnccl.so.2 PATHS ${_wheel_nccl}/lib NO_DEFAULT_PATH)
  endif()
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(NCCL_LIBRARY NAMES nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(CUDAToolkit_FOUND AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY AND TARGET torch_cuda)
    set(DTUNE_HAVE_CUDA ON)
    add_library(dtune_nccl INTERFACE)
    target_include_directories(dtune_nccl SYSTEM INTERFACE ${NCCL_INCLUDE_DIR})
    target_link_libraries(dtune_nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
  endif()
endif()
message(STATUS "dtune: CUDA/NCCL path: ${DTUNE_HAVE_CUDA} (nccl: ${NCCL_LIBRARY})")

# libtorch.so exports its own statically linked copy of std::filesystem. Executables list
# libtorch before libstdc++ in their NEEDED entries, so without this the dynamic linker binds our
# std::filesystem calls to libtorch's copy, which crashes (seen: remove_all jumping to 0).
# Naming libstdc++ first on the link line puts it first in the search order.
string(APPEND CMAKE_EXE_LINKER_FLAGS " -Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state")

# libtorch's OpenMP runtime. Files with hand-written parallel loops (`#pragma omp`, or
# at::parallel_for, an inline template around `#pragma omp parallel`) need -fopenmp where they
# are compiled; without it they silently run on one thread. They link the libgomp that libtorch
# itself loads (the wheel's libgomp.so.1, or the libtorch archive's renamed libgomp-<hash>.so.1),
# so the process keeps one OpenMP runtime and one thread pool.
get_filename_component(_torch_lib_dir "${TORCH_LIBRARY}" DIRECTORY)
file(GLOB _torch_gomp "${_torch_lib_dir}/libgomp.so.1" "${_torch_lib_dir}/libgomp-*.so.1")
if(_torch_gomp)
  list(GET _torch_gomp 0 DTUNE_TORCH_GOMP)
else()
  message(WARNING "dtune: no libgomp.so.1 next to ${TORCH_LIBRARY}; dtune's own CPU kernels "
                  "(decoding products, fused attention) run on one thread")
endif()

# dtune_use_torch_openmp(<target> <source>...): compile the sources with OpenMP on libtorch's
# runtime (and without the precompiled ATen header, which GCC rejects under -fopenmp).
function(dtune_use_torch_openmp target)
  if(DTUNE_TORCH_GOMP)
    set_source_files_properties(${ARGN} TARGET_DIRECTORY ${target} PROPERTIES COMPILE_OPTIONS -fopenmp
                                SKIP_PRECOMPILE_HEADERS ON)
    target_link_libraries(${target} PRIVATE ${DTUNE_TORCH_GOMP})
  endif()
endfunction()
