# One helper per kind of target, so every folder's CMakeLists.txt reads the same.

set(IBSM_WARNINGS -Wall -Wextra -Werror=unused-result -Wno-unused-parameter)
# clang checks the ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations;
# deploy/test-all.sh builds the tree with clang and -DIBSM_WERROR=ON as well.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  list(APPEND IBSM_WARNINGS -Wthread-safety)
endif()
option(IBSM_WERROR "Treat every warning as an error" OFF)
if(IBSM_WERROR)
  list(APPEND IBSM_WARNINGS -Werror)
endif()

# Sanitizers and libFuzzer coverage, on every target of the tree (our code;
# the Debian libraries we link are not instrumented, see
# tests/sanitizers/*.supp). Set before any add_subdirectory() so that every
# folder inherits them.
if(IBSM_BUILD_FUZZ AND NOT IBSM_SANITIZE)
  set(IBSM_SANITIZE "address,undefined")
endif()
if((IBSM_SANITIZE OR IBSM_BUILD_FUZZ) AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "IBSM_SANITIZE and IBSM_BUILD_FUZZ need clang "
                      "(-DCMAKE_CXX_COMPILER=clang++)")
endif()
if(IBSM_SANITIZE)
  if(NOT IBSM_SANITIZE MATCHES "^(address,undefined|undefined,address|address|undefined|thread)$")
    message(FATAL_ERROR "IBSM_SANITIZE=${IBSM_SANITIZE}: use address,undefined or thread")
  endif()
  add_compile_options(-fsanitize=${IBSM_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${IBSM_SANITIZE})
  if(IBSM_SANITIZE MATCHES "undefined")
    # A UBSan finding aborts the process, so that it fails the test that
    # caused it instead of printing a line nobody reads.
    add_compile_options(-fno-sanitize-recover=all)
  endif()
endif()
# Under TSan every executable carries the annotations of Debian's
# uninstrumented Abseil synchronization (tests/sanitizers/tsan_absl_shim.cc).
set(IBSM_TSAN_SHIM "")
if(IBSM_SANITIZE STREQUAL "thread")
  set(IBSM_TSAN_SHIM ${PROJECT_SOURCE_DIR}/tests/sanitizers/tsan_absl_shim.cc)
endif()
if(IBSM_BUILD_FUZZ)
  # Coverage for libFuzzer in every library, without libFuzzer's main: the
  # tests and binaries of the same build link and run as usual.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# ibsm_fuzzer(NAME name SRCS ... DEPS ...)
# A libFuzzer target (tests/fuzz/NAME.cc), linked with libFuzzer's main, in
# build/fuzz/. tests/fuzz/run.sh runs it over tests/fuzz/<corpus>.
function(ibsm_fuzzer)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${IBSM_WARNINGS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  target_link_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
endfunction()

# ibsm_library(NAME name SRCS ... DEPS ... INCLUDE_ROOT dir)
# A target exposes exactly one include root, its own: code sees another
# layer's headers only by linking it, so an include against the layering
# (docs/architecture.md) does not compile. Installed targets also get the
# install include root.
function(ibsm_library)
  cmake_parse_arguments(ARG "" "NAME;INCLUDE_ROOT" "SRCS;DEPS" ${ARGN})
  if(NOT ARG_INCLUDE_ROOT)
    message(FATAL_ERROR "ibsm_library(${ARG_NAME}): INCLUDE_ROOT is required")
  endif()
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${IBSM_WARNINGS})
  target_include_directories(${ARG_NAME} PUBLIC
    $<BUILD_INTERFACE:${ARG_INCLUDE_ROOT}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  set_target_properties(${ARG_NAME} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# ibsm_binary(NAME name SRCS ... DEPS ... [OUTPUT_NAME out])
function(ibsm_binary)
  cmake_parse_arguments(ARG "" "NAME;OUTPUT_NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS} ${IBSM_TSAN_SHIM})
  target_compile_options(${ARG_NAME} PRIVATE ${IBSM_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} ${CMAKE_DL_LIBS})
  if(ARG_OUTPUT_NAME)
    set_target_properties(${ARG_NAME} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# ibsm_test(NAME name SRCS ... DEPS ... [LABELS ...])
# Each test binary links the shared Catch2 main and is registered with ctest.
# Tests, unlike the layers, see the repository root: a white-box test may
# include the internals it tests ("client-lib/src/backoff.h").
function(ibsm_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS} ${IBSM_TSAN_SHIM})
  target_compile_options(${ARG_NAME} PRIVATE ${IBSM_WARNINGS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${ARG_NAME} PRIVATE ibsm_test_main ${ARG_DEPS} ${CMAKE_DL_LIBS})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  set_tests_properties(${ARG_NAME} PROPERTIES
    ENVIRONMENT "IBSM_SOURCE_DIR=${PROJECT_SOURCE_DIR};IBSM_BINARY_DIR=${PROJECT_BINARY_DIR}"
    TIMEOUT 300)
  if(ARG_LABELS)
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()
