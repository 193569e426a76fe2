# Run at every build (cmake -DSOURCE_DIR=... -DOUT=... -P FerryRevision.cmake): writes OUT, the
# definition of ferry::cli::k_revision that `ferry --version` prints. "git <short hash>" when
# SOURCE_DIR is the top of a git checkout, or holds the REVISION file of `make dist`'s tarball;
# "unknown revision" otherwise (a tarball unpacked inside some other repository, whose revision
# would not be ferry's). OUT is
# rewritten only when the text changes, so a build at the same revision recompiles nothing.
set(revision "unknown revision")
find_program(FERRY_GIT git)
if(FERRY_GIT)
  execute_process(COMMAND ${FERRY_GIT} -C ${SOURCE_DIR} rev-parse --show-toplevel
                  OUTPUT_VARIABLE top OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE top_rc ERROR_QUIET)
  execute_process(COMMAND ${FERRY_GIT} -C ${SOURCE_DIR} rev-parse --short HEAD
                  OUTPUT_VARIABLE hash OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE hash_rc ERROR_QUIET)
  if(top_rc EQUAL 0 AND hash_rc EQUAL 0)
    file(REAL_PATH ${top} top)
    file(REAL_PATH ${SOURCE_DIR} source)
    if(top STREQUAL source)
      set(revision "git ${hash}")
    endif()
  endif()
endif()
if(revision STREQUAL "unknown revision" AND EXISTS ${SOURCE_DIR}/REVISION)
  file(STRINGS ${SOURCE_DIR}/REVISION hash LIMIT_COUNT 1 REGEX "^[0-9a-f]+$")
  if(hash)
    set(revision "git ${hash}")
  endif()
endif()
set(text "// Generated at build time by cmake/FerryRevision.cmake: the revision ferry is built from.
namespace ferry::cli {
extern const char k_revision[];
const char k_revision[] = \"${revision}\";
}  // namespace ferry::cli
")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
