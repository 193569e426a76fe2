# Warnings and sanitizers for project code only (linked PRIVATE).
add_library(ferry_settings INTERFACE)
target_compile_options(ferry_settings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                                 $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>)
if(DEFINED ENV{CI} OR FERRY_WERROR)
  target_compile_options(ferry_settings INTERFACE -Werror)
endif()
set(FERRY_SANITIZE "" CACHE STRING "Sanitizers, e.g. address;undefined")
if(FERRY_SANITIZE)
  list(JOIN FERRY_SANITIZE "," _san)
  target_compile_options(ferry_settings INTERFACE -fsanitize=${_san} -fno-omit-frame-pointer)
  target_link_options(ferry_settings INTERFACE -fsanitize=${_san})
endif()
