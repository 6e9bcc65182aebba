# Shared by the bench smoke tests (included): runs a bench that must print
# exactly one JSON line, and checks the line's keys.
#
# run_for_one_json_line(NAME TIMEOUT): runs ${BENCH} ${args}; sets `line`
# in the caller, or stops with the bench's stderr.
macro(run_for_one_json_line name timeout)
  execute_process(COMMAND ${BENCH} ${args}
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc
    TIMEOUT ${timeout})
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name} ${args} failed (${rc}):\n${err}")
  endif()
  string(STRIP "${out}" line)
  string(FIND "${line}" "\n" newline)
  if(NOT newline EQUAL -1)
    message(FATAL_ERROR "${name} printed more than one line:\n${out}")
  endif()
endmacro()

function(expect key want)
  string(JSON got ERROR_VARIABLE error GET "${line}" ${key})
  if(error)
    message(FATAL_ERROR "the JSON line has no \"${key}\" (${error}):\n${line}")
  endif()
  if(NOT "${got}" STREQUAL "${want}")
    message(FATAL_ERROR "\"${key}\" is ${got}, expected ${want}:\n${line}")
  endif()
endfunction()
# A positive integer.
function(expect_positive key)
  string(JSON got ERROR_VARIABLE error GET "${line}" ${key})
  if(error OR NOT got MATCHES "^[0-9]+$" OR got EQUAL 0)
    message(FATAL_ERROR "\"${key}\" is not a positive number:\n${line}")
  endif()
endfunction()
# A positive number, decimals allowed.
function(expect_positive_number key)
  string(JSON got ERROR_VARIABLE error GET "${line}" ${key})
  if(error OR NOT got MATCHES "^[0-9]+(\\.[0-9]+)?$" OR got EQUAL 0)
    message(FATAL_ERROR "\"${key}\" is not a positive number:\n${line}")
  endif()
endfunction()
function(expect_type key want)
  string(JSON got ERROR_VARIABLE error TYPE "${line}" ${key})
  if(error OR NOT got STREQUAL want)
    message(FATAL_ERROR "\"${key}\" is not ${want} (${got}${error}):\n${line}")
  endif()
endfunction()
