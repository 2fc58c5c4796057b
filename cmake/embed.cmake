# cmake -DIN=x.lua -DOUT=x.c -DNAME=x -P embed.cmake: writes `const char bg__lua_x[]`.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${NAME}.lua; do not edit. */\n"
  "extern const char bg__lua_${NAME}[];\n"
  "const char bg__lua_${NAME}[] = {\n${bytes}0x00};\n")
