# Embeds each Lua script of libbg/lua/ into a generated C file as a NUL-terminated string,
# so the library carries its scripts and never reads them from disk at run time. Every script
# gets lua/lib/prelude.lua in front of it: the pieces the scripts share, written once.
set(BG_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed.cmake)
function(bg_embed_lua out_var prelude)
  set(outputs)
  foreach(src ${ARGN})
    get_filename_component(name ${src} NAME_WE)
    set(out ${CMAKE_CURRENT_BINARY_DIR}/lua_${name}.c)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -DIN=${src} -DOUT=${out} -DNAME=${name} -DPRELUDE=${prelude}
        -P ${BG_EMBED_SCRIPT}
      DEPENDS ${src} ${prelude} ${BG_EMBED_SCRIPT}
      COMMENT "Embedding Lua script ${name}")
    list(APPEND outputs ${out})
  endforeach()
  set(${out_var} ${outputs} PARENT_SCOPE)
endfunction()
