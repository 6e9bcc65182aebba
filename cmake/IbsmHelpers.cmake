# One helper per kind of target, so every folder's CMakeLists.txt reads the same.

set(IBSM_WARNINGS -Wall -Wextra -Werror=unused-result -Wno-unused-parameter)

# ibsm_library(NAME name SRCS ... DEPS ... [PUBLIC_INCLUDE dir])
function(ibsm_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_INCLUDE" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${IBSM_WARNINGS})
  target_include_directories(${ARG_NAME} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    ${ARG_PUBLIC_INCLUDE})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  set_target_properties(${ARG_NAME} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# ibsm_binary(NAME name SRCS ... DEPS ... [OUTPUT_NAME out])
function(ibsm_binary)
  cmake_parse_arguments(ARG "" "NAME;OUTPUT_NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${IBSM_WARNINGS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  if(ARG_OUTPUT_NAME)
    set_target_properties(${ARG_NAME} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# ibsm_test(NAME name SRCS ... DEPS ... [LABELS ...])
# Each test binary links the shared Catch2 main and is registered with ctest.
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
