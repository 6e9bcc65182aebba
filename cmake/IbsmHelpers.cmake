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
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${IBSM_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
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
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${IBSM_WARNINGS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${ARG_NAME} PRIVATE ibsm_test_main ${ARG_DEPS})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  set_tests_properties(${ARG_NAME} PROPERTIES
    ENVIRONMENT "IBSM_SOURCE_DIR=${PROJECT_SOURCE_DIR};IBSM_BINARY_DIR=${PROJECT_BINARY_DIR}"
    TIMEOUT 300)
  if(ARG_LABELS)
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()
