# The toolchain of a portable build (scripts/portable.sh): this machine's GCC, compiling against the
# C library of an old Debian root (FERRY_SYSROOT) so that the binary asks only for symbols that old
# glibc has, and finding every library in FERRY_DEPS (static archives, staged by the script).
#
# GCC looks for crt*.o and libc in its own multiarch directories before the sysroot's; -B and -L put
# the old root's first. libstdc++ is linked in statically; the unwinder stays libgcc_s.so.1, which
# every glibc system has (GCC 12's static one needs glibc 2.35's _dl_find_object).
set(FERRY_SYSROOT "$ENV{FERRY_SYSROOT}" CACHE PATH "the old root whose glibc the build targets")
set(FERRY_DEPS "$ENV{FERRY_DEPS}" CACHE PATH "static libraries and headers staged for the build")
if(NOT IS_DIRECTORY "${FERRY_SYSROOT}/usr/include" OR NOT IS_DIRECTORY "${FERRY_DEPS}")
  message(FATAL_ERROR "portable toolchain: set FERRY_SYSROOT (an old root) and FERRY_DEPS (staged libraries)")
endif()
set(CMAKE_SYSROOT "${FERRY_SYSROOT}")
set(_lib "${FERRY_SYSROOT}/usr/lib/x86_64-linux-gnu")
set(_flags "-B${_lib}/ -L${_lib} -L${FERRY_SYSROOT}/lib/x86_64-linux-gnu -static-libstdc++")
# --gc-sections: libarchive's pax writer pulls in its table of every writer, xar's XML one too;
# unreachable, it is dropped instead of asking for libxml2 and ICU.
set(CMAKE_EXE_LINKER_FLAGS_INIT "${_flags} -Wl,--gc-sections")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_flags}")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_flags}")
list(APPEND CMAKE_PREFIX_PATH "${FERRY_DEPS}")
set(CMAKE_FIND_ROOT_PATH "${FERRY_DEPS}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
