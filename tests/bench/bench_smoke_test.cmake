# Smoke test of ibsm-bench: runs one workload with a few alerts and checks
# only that it prints one JSON line that parses, with the counts and the
# shape it must have. No figure is checked: benchmarks are not timed tests.
#
#   cmake -DBENCH=build/bin/ibsm-bench -DWORKLOAD=W1 -DMESSAGES=200 \
#         [-DTOPOLOGY=link|single] [-DMODE=client|wire] [-DRSS_EVERY=100] \
#         -P tests/bench/bench_smoke_test.cmake
#
# TOPOLOGY defaults to link, MODE to ibsm-bench's default (client); W2 runs
# 2 subscribers; RSS_EVERY (W6 only) is --rss-every.
foreach(var BENCH WORKLOAD MESSAGES)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "bench_smoke_test.cmake needs -D${var}=...")
  endif()
endforeach()
if(NOT DEFINED TOPOLOGY)
  set(TOPOLOGY link)
endif()
if(NOT DEFINED MODE)
  set(MODE client)
endif()

set(args --topology=${TOPOLOGY} --workload=${WORKLOAD} --messages=${MESSAGES})
if(NOT MODE STREQUAL "client")  # the default is not passed: it is tested too
  list(APPEND args --mode=${MODE})
endif()
if(WORKLOAD STREQUAL "W2")
  list(APPEND args --subscribers=2)
endif()
if(WORKLOAD STREQUAL "W6")
  if(NOT DEFINED RSS_EVERY)
    message(FATAL_ERROR "W6 needs -DRSS_EVERY=...")
  endif()
  list(APPEND args --rss-every=${RSS_EVERY})
endif()
include(${CMAKE_CURRENT_LIST_DIR}/json_line.cmake)
run_for_one_json_line(ibsm-bench 120)

expect(workload ${WORKLOAD})
expect(topology ${TOPOLOGY})
expect(mode ${MODE})
expect(policy ibsm-west-africa.textproto)
expect(messages ${MESSAGES})
expect_positive(msgs_per_sec)
expect_positive(broker_rss_kib)
if(TOPOLOGY STREQUAL "link")
  expect(signed ON)  # CMake reads JSON true as ON
  expect(delivered ${MESSAGES})
  expect_positive(peer_rss_kib)
else()
  expect(signed OFF)
  expect_type(peer_rss_kib NULL)
  if(WORKLOAD STREQUAL "W2")
    expect(delivered ${MESSAGES})  # the fewest any subscriber received
  endif()
endif()
if(WORKLOAD STREQUAL "W4")
  expect_positive(drain_ms)
endif()
if(WORKLOAD STREQUAL "W6")
  # [[0,kib],[K,kib],...,[N,kib]]: one sample before publishing, one after
  # every RSS_EVERY alerts and one after the last.
  math(EXPR shares "(${MESSAGES} + ${RSS_EVERY} - 1) / ${RSS_EVERY}")
  string(JSON samples LENGTH "${line}" rss_samples_kib)
  math(EXPR want "${shares} + 1")
  if(NOT samples EQUAL want)
    message(FATAL_ERROR "${samples} RSS samples, expected ${want}:\n${line}")
  endif()
  foreach(i RANGE ${shares})
    math(EXPR alerts "${i} * ${RSS_EVERY}")
    if(alerts GREATER MESSAGES)
      set(alerts ${MESSAGES})
    endif()
    string(JSON got GET "${line}" rss_samples_kib ${i} 0)
    string(JSON kib GET "${line}" rss_samples_kib ${i} 1)
    if(NOT got EQUAL alerts OR NOT kib MATCHES "^[0-9]+$" OR kib EQUAL 0)
      message(FATAL_ERROR "RSS sample ${i} is [${got},${kib}], expected "
                          "[${alerts},KiB]:\n${line}")
    endif()
  endforeach()
else()
  expect_type(rss_samples_kib NULL)
endif()
message(STATUS "${line}")
