# The layering of src/ (docs/ARCHITECTURE.md), checked on every configure and by the ctest
# `build_layering`: a source or public header of layer L may include "dtune/<X>/..." only for
# an X that L lists below (a whole layer), or a header that L lists by path. Link dependencies
# alone would not catch an include of a header-only part of a higher layer.
#
# Run as a script: cmake -DDTUNE_SOURCE_DIR=<repo> -P cmake/Layers.cmake
cmake_minimum_required(VERSION 3.25)
set(DTUNE_LAYERS_core      core)
set(DTUNE_LAYERS_kernels   core kernels)
set(DTUNE_LAYERS_tokenizer core tokenizer)
set(DTUNE_LAYERS_dist      core dist)
set(DTUNE_LAYERS_data      core data tokenizer)
set(DTUNE_LAYERS_lora      core kernels lora)
set(DTUNE_LAYERS_io        core io lora)
set(DTUNE_LAYERS_model     core io kernels lora model)
# config/ binds the modules' libtorch-free options structs and nothing else of theirs.
set(DTUNE_LAYERS_config    core config kernels/kernel_policy.h lora/lora_options.h generate/generate_options.h)
set(DTUNE_LAYERS_generate  core data generate io kernels lora model tokenizer)
set(DTUNE_LAYERS_train     config core data dist generate io kernels lora model tokenizer train)
set(DTUNE_LAYERS_cli       cli config core data dist generate io kernels lora model tokenizer train)

function(dtune_check_layers source_dir)
  file(GLOB _areas LIST_DIRECTORIES true RELATIVE ${source_dir}/src ${source_dir}/src/*)
  set(_errors "")
  foreach(_area IN LISTS _areas)
    if(NOT IS_DIRECTORY ${source_dir}/src/${_area})
      continue()
    endif()
    if(NOT DEFINED DTUNE_LAYERS_${_area})
      string(APPEND _errors "\n  src/${_area}/ is a layer that cmake/Layers.cmake does not list: add its allowed includes")
      continue()
    endif()
    file(GLOB_RECURSE _files ${source_dir}/src/${_area}/*.cpp ${source_dir}/src/${_area}/*.h
                             ${source_dir}/include/dtune/${_area}/*.h)
    foreach(_file IN LISTS _files)
      file(STRINGS ${_file} _includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"dtune/")
      foreach(_line IN LISTS _includes)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"dtune/([^\"]+)\".*$" "\\1" _header "${_line}")
        string(REGEX REPLACE "/.*$" "" _layer "${_header}")
        if(NOT _layer IN_LIST DTUNE_LAYERS_${_area} AND NOT _header IN_LIST DTUNE_LAYERS_${_area})
          file(RELATIVE_PATH _rel ${source_dir} ${_file})
          string(APPEND _errors "\n  ${_rel} includes dtune/${_header}: layer ${_area}/ may include only ${DTUNE_LAYERS_${_area}}")
        endif()
      endforeach()
    endforeach()
  endforeach()
  if(_errors)
    message(FATAL_ERROR "dtune layering (cmake/Layers.cmake, docs/ARCHITECTURE.md):${_errors}")
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)
  dtune_check_layers(${DTUNE_SOURCE_DIR})
endif()
