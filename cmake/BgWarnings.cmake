# Warnings every bg target is built with; BG_WERROR (on in CI) makes them errors.
function(bg_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wformat=2 -Wpointer-arith -Wcast-qual -Wwrite-strings -Wundef -Wvla)
  if(BG_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
endfunction()
