#include "common/duration.hpp"

#include <gtest/gtest.h>

namespace devspaces::common {
namespace {

using std::chrono::milliseconds;

TEST(duration, parses_each_unit) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("5s"), milliseconds(5000));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3600000));
  EXPECT_EQ(parse_duration("0s"), milliseconds(0));
}

TEST(duration, rejects_malformed) {
  for (const char* bad :
       {"", "5", "s", "5 s", "-5s", "5sec", "1.5s", "5S", "ms", "99999999999999s"})
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(duration, formats_in_largest_exact_unit) {
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(5000)), "5s");
  EXPECT_EQ(format_duration(milliseconds(120000)), "2m");
  EXPECT_EQ(format_duration(milliseconds(3600000)), "1h");
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
}

}  // namespace
}  // namespace devspaces::common
