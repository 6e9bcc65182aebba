# Smoke test of ibsm-bench --topology=link: runs one workload with a few
# alerts and checks only that it prints one JSON line that parses, with the
# counts it must have. No figure is checked: benchmarks are not timed tests.
#
#   cmake -DBENCH=build/bin/ibsm-bench -DWORKLOAD=W1 -DMESSAGES=200 \
#         -P tests/bench/bench_smoke_test.cmake
foreach(var BENCH WORKLOAD MESSAGES)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "bench_smoke_test.cmake needs -D${var}=...")
  endif()
endforeach()

set(args --topology=link --workload=${WORKLOAD} --messages=${MESSAGES})
execute_process(COMMAND ${BENCH} ${args}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ibsm-bench ${args} failed (${rc}):\n${err}")
endif()
string(STRIP "${out}" line)
string(FIND "${line}" "\n" newline)
if(NOT newline EQUAL -1)
  message(FATAL_ERROR "ibsm-bench printed more than one line:\n${out}")
endif()

function(expect key want)
  string(JSON got ERROR_VARIABLE error GET "${line}" ${key})
  if(error)
    message(FATAL_ERROR "the JSON line has no \"${key}\" (${error}):\n${line}")
  endif()
  if(NOT "${got}" STREQUAL "${want}")
    message(FATAL_ERROR "\"${key}\" is ${got}, expected ${want}:\n${line}")
  endif()
endfunction()
function(expect_positive key)
  string(JSON got ERROR_VARIABLE error GET "${line}" ${key})
  if(error OR NOT got MATCHES "^[0-9]+$" OR got EQUAL 0)
    message(FATAL_ERROR "\"${key}\" is not a positive number:\n${line}")
  endif()
endfunction()

expect(workload ${WORKLOAD})
expect(topology link)
expect(signed ON)  # CMake reads JSON true as ON
expect(messages ${MESSAGES})
expect(delivered ${MESSAGES})
expect_positive(msgs_per_sec)
expect_positive(broker_rss_kib)
expect_positive(peer_rss_kib)
if(WORKLOAD STREQUAL "W4")
  expect_positive(drain_ms)
endif()
message(STATUS "${line}")
