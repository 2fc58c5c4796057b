# cmake -DIN=x.lua -DOUT=x.c -DNAME=x [-DPRELUDE=p.lua] -P embed.cmake: writes
# `const char bg__lua_x[]`, the prelude's text (the pieces every script shares) first.
set(text "")
if(PRELUDE)
  file(READ ${PRELUDE} text)
endif()
file(READ ${IN} body)
string(APPEND text "${body}")
file(WRITE ${OUT}.lua "${text}")
file(READ ${OUT}.lua hex HEX)
file(REMOVE ${OUT}.lua)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${NAME}.lua; do not edit. */\n"
  "extern const char bg__lua_${NAME}[];\n"
  "const char bg__lua_${NAME}[] = {\n${bytes}0x00};\n")
