# BG_SANITIZE=address,undefined builds everything with those sanitizers (a second CI build).
if(BG_SANITIZE)
  add_compile_options(-fsanitize=${BG_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${BG_SANITIZE})
endif()
