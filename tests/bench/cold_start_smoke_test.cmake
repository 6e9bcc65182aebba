# Smoke test of ibsm-cold-start-bench: a small data directory, a few warm
# starts; checks only that it prints one JSON line that parses, with the
# counts and the shape it must have. No time is checked: benchmarks are not
# timed tests.
#
#   cmake -DBENCH=build/bin/ibsm-cold-start-bench -DALERTS=20000 -DRUNS=2 \
#         -P tests/bench/cold_start_smoke_test.cmake
foreach(var BENCH ALERTS RUNS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "cold_start_smoke_test.cmake needs -D${var}=...")
  endif()
endforeach()

set(args --alerts=${ALERTS} --runs=${RUNS} --cache=warm --outbox-backlog=500)
include(${CMAKE_CURRENT_LIST_DIR}/json_line.cmake)
run_for_one_json_line(ibsm-cold-start-bench 280)

expect(bench cold-start)
expect(alerts ${ALERTS})
expect(cache warm)
expect(runs ${RUNS})
expect(peer ON)  # CMake reads JSON true as ON
expect(outbox_backlog 500)
expect_type(cold_serving_ms NULL)  # with --cache=warm
# 20,000 alerts of 1 KiB random payload do not compress: at least 20 MB.
string(JSON bytes GET "${line}" data_bytes)
if(bytes LESS ${ALERTS}000)
  message(FATAL_ERROR "data_bytes ${bytes} is less than 1 KB per alert:\n${line}")
endif()
expect_positive_number(generate_s)
expect_positive_number(median_ms)
string(JSON runs LENGTH "${line}" serving_ms)
if(NOT runs EQUAL RUNS)
  message(FATAL_ERROR "${runs} serving_ms values, expected ${RUNS}:\n${line}")
endif()
math(EXPR last "${RUNS} - 1")
foreach(i RANGE ${last})
  string(JSON ms GET "${line}" serving_ms ${i})
  if(NOT ms MATCHES "^[0-9]+(\\.[0-9]+)?$" OR ms EQUAL 0)
    message(FATAL_ERROR "serving_ms[${i}] is ${ms}:\n${line}")
  endif()
endforeach()
message(STATUS "${line}")
