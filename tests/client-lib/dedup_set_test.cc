// Tests for client-lib/src/dedup_set.h: the bounded LRU set the Subscriber
// uses to drop redelivered alerts by (originator, id).
#include "client-lib/src/dedup_set.h"

#include <catch2/catch.hpp>

using ibsm::internal::DedupSet;

TEST_CASE("DedupSet reports the second insert of a key as a duplicate") {
  DedupSet set(4);
  CHECK(set.Insert("a"));
  CHECK_FALSE(set.Insert("a"));
  CHECK(set.size() == 1);
}

TEST_CASE("DedupSet evicts the least recently used key when full") {
  DedupSet set(2);
  CHECK(set.Insert("a"));
  CHECK(set.Insert("b"));
  CHECK_FALSE(set.Insert("a"));  // touches a: b is now the oldest
  CHECK(set.Insert("c"));        // evicts b
  CHECK(set.size() == 2);
  CHECK(set.Contains("a"));
  CHECK_FALSE(set.Contains("b"));
  CHECK(set.Contains("c"));
  CHECK(set.Insert("b"));  // forgotten, so new again
}

TEST_CASE("DedupSet with capacity zero still remembers the last key") {
  DedupSet set(0);
  CHECK(set.capacity() == 1);
  CHECK(set.Insert("a"));
  CHECK_FALSE(set.Insert("a"));
  CHECK(set.Insert("b"));
  CHECK_FALSE(set.Contains("a"));
}

TEST_CASE("DedupSet alert keys of different originators never collide") {
  CHECK(DedupSet::AlertKey("CIV/police", "x") !=
        DedupSet::AlertKey("MLI/customs", "x"));
  CHECK(DedupSet::AlertKey("CIV/police", "a") !=
        DedupSet::AlertKey("CIV/polic", "ea"));
  DedupSet set(10);
  CHECK(set.Insert(DedupSet::AlertKey("CIV/police", "x")));
  CHECK(set.Insert(DedupSet::AlertKey("MLI/customs", "x")));
  CHECK_FALSE(set.Insert(DedupSet::AlertKey("CIV/police", "x")));
}
