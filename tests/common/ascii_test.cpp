#include "common/ascii.hpp"

#include <gtest/gtest.h>

namespace devspaces::common {
namespace {

TEST(ascii, iequals_ignores_the_case_of_letters_only) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("TE", "te"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("te", "tex"));
  EXPECT_FALSE(iequals("Host", "Hosu"));
  // Pairs 0x20 apart that are not letters are different characters.
  EXPECT_FALSE(iequals("@", "`"));
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("-", "\r"));
  EXPECT_FALSE(iequals("\x01", "!"));
  // Every byte against every byte: equal exactly when lowercasing ASCII letters makes them so.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const char x = static_cast<char>(a);
      const char y = static_cast<char>(b);
      const auto low = [](int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
      ASSERT_EQ(iequals(std::string_view(&x, 1), std::string_view(&y, 1)), low(a) == low(b))
          << a << " " << b;
    }
  }
}

}  // namespace
}  // namespace devspaces::common
