# cmake -DIN=x.lua -DOUT=x.c -DNAME=x [-DPRELUDE=p.lua] -P embed.cmake: writes
# `const char bg__lua_x[]`, the prelude's text (the pieces every script shares) first.
set(text "")
if(PRELUDE)
  file(READ ${PRELUDE} text)
endif()
file(READ ${IN} body)
string(APPEND text "${body}")
# Comment lines are for readers of the source, not for Redis: each becomes an empty line, so
# line numbers in Redis's error messages stay those of the prelude and script put together.
string(REGEX REPLACE "(^|\n)[ \t]*--[^\n]*" "\\1" text "${text}")
# Redis 7.0 refuses a bulk string over 16 KiB from a connection that has not authenticated,
# and closes it: a script loaded in the pipeline behind a refused AUTH must fit, so that the
# AUTH's error is what the user sees.
string(LENGTH "${text}" size)
if(size GREATER 16384)
  message(FATAL_ERROR "${NAME}.lua with the prelude is ${size} bytes without comments; "
    "Redis takes at most 16384 before AUTH: make it smaller")
endif()
file(WRITE ${OUT}.lua "${text}")
file(READ ${OUT}.lua hex HEX)
file(REMOVE ${OUT}.lua)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${NAME}.lua; do not edit. */\n"
  "extern const char bg__lua_${NAME}[];\n"
  "const char bg__lua_${NAME}[] = {\n${bytes}0x00};\n")
