#include "common/duration.hpp"

#include <gtest/gtest.h>

#include "common/log_level.hpp"

namespace devspaces::common {
namespace {

using std::chrono::milliseconds;

TEST(duration, parses_go_style_durations) {
  const struct {
    const char* text;
    std::int64_t ms;
  } cases[] = {
      {"250ms", 250},
      {"5s", 5'000},
      {"2m", 120'000},
      {"1h", 3'600'000},
      {"0s", 0},
      {"0", 0},
      {"1m30s", 90'000},
      {"1.5s", 1'500},
      {"500ms", 500},
      {"2h45m", 9'900'000},
      {"1h2m3s4ms", 3'723'004},
      {"0.5m", 30'000},
      {".5s", 500},
      {"1.s", 1'000},
      {"+5s", 5'000},
      {"1500000us", 1'500},
      {"1500000\xC2\xB5s", 1'500},  // µs
      {"2000000000ns", 2'000},
      {"1.0000000001s", 1'000},  // digits below a nanosecond do not count
      {"30s30s", 60'000},        // Go adds repeated units too
      {"2562047h", 2562047LL * 3'600'000},
  };
  for (const auto& c : cases) {
    auto r = parse_duration_checked(c.text);
    ASSERT_TRUE(r.value) << c.text << ": " << r.error;
    EXPECT_EQ(r.value->count(), c.ms) << c.text;
    EXPECT_TRUE(r.error.empty()) << c.text;
    EXPECT_EQ(parse_duration(c.text), milliseconds(c.ms)) << c.text;
  }
}

TEST(duration, refuses_junk_negative_overflow_with_a_reason) {
  const struct {
    const char* text;
    const char* reason;  // part of the error text
  } cases[] = {
      {"", "is not a duration"},       {"s", "is not a duration"},
      {".s", "is not a duration"},     {"5", "without a unit"},
      {"100", "without a unit"},       {"1m30", "without a unit"},
      {"5 s", "unknown unit ' s'"},    {"5sec", "unknown unit 'sec'"},
      {"5S", "unknown unit 'S'"},      {"1d", "unknown unit 'd'"},
      {"ms", "is not a duration"},     {"1.5.3s", "without a unit"},
      {"-5s", "is negative"},          {"-0", "is negative"},
      {"99999999999999s", "too long"}, {"2562048h", "too long"},
      {"2562047h48m", "too long"},     {"99999999999999999999999h", "too long"},
      {"1.5ms", "finer than"},         {"1us", "finer than"},
      {"1ns", "finer than"},
  };
  for (const auto& c : cases) {
    auto r = parse_duration_checked(c.text);
    EXPECT_FALSE(r.value) << c.text;
    EXPECT_NE(r.error.find(c.reason), std::string::npos) << c.text << ": " << r.error;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << c.text;
    EXPECT_FALSE(parse_duration(c.text)) << c.text;
  }
}

TEST(duration, formats_in_the_largest_exact_unit) {
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(5000)), "5s");
  EXPECT_EQ(format_duration(milliseconds(120000)), "2m");
  EXPECT_EQ(format_duration(milliseconds(3600000)), "1h");
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
  for (auto ms : {0, 1, 250, 1500, 90'000, 3'600'000, 9'900'000})  // what it prints parses back
    EXPECT_EQ(parse_duration(format_duration(milliseconds(ms))), milliseconds(ms)) << ms;
}

TEST(log_level, names_in_any_case_and_aliases) {
  const struct {
    const char* text;
    log_level level;
  } cases[] = {
      {"trace", log_level::trace},  {"TRACE", log_level::trace}, {"debug", log_level::debug},
      {"Debug", log_level::debug},  {"info", log_level::info},   {"INFO", log_level::info},
      {"warn", log_level::warn},    {"WARN", log_level::warn},   {"warning", log_level::warn},
      {"Warning", log_level::warn}, {"error", log_level::error}, {"ERR", log_level::error},
      {"off", log_level::off},      {"OFF", log_level::off},
  };
  for (const auto& c : cases) {
    auto l = parse_log_level(c.text);
    ASSERT_TRUE(l) << c.text;
    EXPECT_EQ(*l, c.level) << c.text;
  }
  for (const char* bad : {"", "verbose", "warnings", " info", "info ", "inf", "fatal", "5"})
    EXPECT_FALSE(parse_log_level(bad)) << bad;
  EXPECT_EQ(log_level_name(*parse_log_level("WARNING")), "warn");
  EXPECT_EQ(log_level_name(log_level::error), "error");
  for (auto l : {log_level::trace, log_level::debug, log_level::info, log_level::warn,
                 log_level::error, log_level::off}) {
    EXPECT_EQ(parse_log_level(log_level_name(l)), l);
    EXPECT_NE(log_level_names().find(log_level_name(l)), std::string_view::npos);
  }
}

}  // namespace
}  // namespace devspaces::common
