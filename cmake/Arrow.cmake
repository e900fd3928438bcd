# Apache Arrow C++ (libarrow, libparquet and their headers) from the pinned pyarrow wheel in the
# project venv (scripts/setup.sh), the way libtorch comes from the torch wheel: no separate
# Arrow install. The wheel's libraries are built with the manylinux toolchain and the C++11 ABI,
# which Debian's g++ links against (checked by tests/data/arrow_rows_test.cpp reading files
# pyarrow wrote). Elsewhere (an HPC module): -DARROW_INCLUDE_DIR=... -DARROW_LIB_DIR=... with
# libarrow.so* and libparquet.so* in that folder.
# Defines the imported targets dtune::arrow and dtune::parquet.
if(NOT ARROW_INCLUDE_DIR OR NOT ARROW_LIB_DIR)
  execute_process(
    COMMAND "${DTUNE_VENV}/bin/python" -c
            "import pyarrow as pa; print(pa.get_include()); print(pa.get_library_dirs()[0]); print(pa.__version__)"
    OUTPUT_VARIABLE _pyarrow OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "pyarrow is not installed in ${DTUNE_VENV}: run scripts/setup.sh (dtune links the "
                        "libarrow/libparquet its wheel ships), or pass -DARROW_INCLUDE_DIR and -DARROW_LIB_DIR")
  endif()
  string(REPLACE "\n" ";" _pyarrow "${_pyarrow}")
  list(GET _pyarrow 0 ARROW_INCLUDE_DIR)
  list(GET _pyarrow 1 ARROW_LIB_DIR)
  list(GET _pyarrow 2 _pyarrow_version)
  message(STATUS "Arrow C++ from pyarrow ${_pyarrow_version}: ${ARROW_LIB_DIR}")
endif()

foreach(_lib arrow parquet)
  # The wheel ships libarrow.so.<major*100> without the unversioned link name.
  file(GLOB _candidates "${ARROW_LIB_DIR}/lib${_lib}.so" "${ARROW_LIB_DIR}/lib${_lib}.so.[0-9]*")
  list(SORT _candidates)
  list(LENGTH _candidates _n)
  if(_n EQUAL 0)
    message(FATAL_ERROR "lib${_lib}.so not found in ${ARROW_LIB_DIR}")
  endif()
  list(GET _candidates 0 _so)
  add_library(dtune::${_lib} SHARED IMPORTED)
  set_target_properties(dtune::${_lib} PROPERTIES IMPORTED_LOCATION "${_so}" IMPORTED_NO_SONAME FALSE
                        INTERFACE_INCLUDE_DIRECTORIES "${ARROW_INCLUDE_DIR}")
endforeach()
set_property(TARGET dtune::parquet APPEND PROPERTY INTERFACE_LINK_LIBRARIES dtune::arrow)
# The executables find the wheel's libraries at run time through this rpath.
list(APPEND CMAKE_BUILD_RPATH "${ARROW_LIB_DIR}")
list(APPEND CMAKE_INSTALL_RPATH "${ARROW_LIB_DIR}")
