# dtune_warnings: -Wall -Wextra on our own targets; -Werror when DTUNE_WERROR (CI). Third-party
# headers come in as SYSTEM includes so their warnings never fail our build.
add_library(dtune_warnings INTERFACE)
target_compile_options(dtune_warnings INTERFACE -Wall -Wextra
  $<$<BOOL:${DTUNE_WERROR}>:-Werror>)
