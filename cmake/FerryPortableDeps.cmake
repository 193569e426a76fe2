# The libraries of a portable build, all static, from FERRY_DEPS (cmake/portable-toolchain.cmake,
# scripts/portable.sh stages them): the same target names as FerryDeps.cmake gives. fmt and
# nlohmann-json are used header-only, so nothing of this machine's shared libraries is linked.
find_package(Threads REQUIRED)
find_package(TBB REQUIRED CONFIG)
find_path(FERRY_DEPS_INCLUDE zstd.h REQUIRED)

# ferry_static_dep(TARGET LIB...): an imported target linking FERRY_DEPS/lib/libLIB.a for each LIB.
function(ferry_static_dep target)
  set(archives)
  foreach(lib IN LISTS ARGN)
    find_library(FERRY_STATIC_${lib} lib${lib}.a REQUIRED)
    list(APPEND archives ${FERRY_STATIC_${lib}})
  endforeach()
  add_library(${target} INTERFACE IMPORTED)
  set_target_properties(${target} PROPERTIES INTERFACE_LINK_LIBRARIES "${archives}"
                                             INTERFACE_INCLUDE_DIRECTORIES "${FERRY_DEPS_INCLUDE}")
endfunction()

ferry_static_dep(PkgConfig::ZSTD zstd)
ferry_static_dep(PkgConfig::XXHASH xxhash)
ferry_static_dep(PkgConfig::ISAL isal)
# libarchive's filters (ferry reads conda-pack's archives through read_support_filter_all), and
# nettle for the zip reader's decryption.
ferry_static_dep(PkgConfig::ARCHIVE archive lzma zstd lz4 bz2 z nettle)
ferry_static_dep(ferry::dep_deflate deflate)
ferry_static_dep(simdjson::simdjson simdjson)
add_library(ferry::dep_cli11 INTERFACE IMPORTED)
set_target_properties(ferry::dep_cli11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${FERRY_DEPS_INCLUDE}")
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${FERRY_DEPS_INCLUDE}")
add_library(fmt::fmt INTERFACE IMPORTED)
set_target_properties(fmt::fmt PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${FERRY_DEPS_INCLUDE}"
                                          INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY=1)
message(STATUS "ferry deps: portable, static from ${FERRY_DEPS}, glibc of ${CMAKE_SYSROOT}")
