# One precompiled <ATen/ATen.h> for every translation unit that uses libtorch.
#
# Parsing ATen's headers is most of the cost of each libtorch TU: ~9 s of rms_norm.cpp's 9.3 s,
# 2.4 s with the precompiled header (GCC 12, -O3, this project's 2-core VM). The header is
# compiled once (~20 s, ~390 MB in the build folder) by dtune_torch_pch and reused by the
# targets that call dtune_use_torch_pch(<target>). Sources compiled with -fopenmp
# (dtune_use_torch_openmp) skip it: GCC refuses a header precompiled without _OPENMP.
#
# The header is force-included, so a file that forgets `#include <ATen/ATen.h>` still compiles
# here; -DDTUNE_PCH=OFF builds exactly as without it (and catches that).
option(DTUNE_PCH "Precompile libtorch's ATen header once for all of dtune's libtorch sources" ON)

if(DTUNE_PCH)
  add_library(dtune_torch_pch OBJECT ${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp)
  target_link_libraries(dtune_torch_pch PRIVATE torch dtune_warnings)
  target_precompile_headers(dtune_torch_pch PRIVATE <ATen/ATen.h>)
endif()

# dtune_use_torch_pch(<target>...): the targets' sources reuse the precompiled ATen header. Also
# records them in the DTUNE_TORCH_TARGETS global property, which dtune_add_test reads to give
# tests of libtorch libraries the same header.
function(dtune_use_torch_pch)
  foreach(target IN LISTS ARGN)
    set_property(GLOBAL APPEND PROPERTY DTUNE_TORCH_TARGETS ${target})
    if(DTUNE_PCH)
      target_precompile_headers(${target} REUSE_FROM dtune_torch_pch)
    endif()
  endforeach()
endfunction()
