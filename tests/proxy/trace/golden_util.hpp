#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/test_support.hpp"

namespace devspaces::test {

/// Contents of tests/proxy/trace/golden/<name>; with DEVSPACES_UPDATE_GOLDEN=1 the file is
/// first rewritten with `actual` (review the diff before committing).
inline std::string golden(const std::string& name, const std::string& actual) {
  const auto path = source_path("tests/proxy/trace/golden/" + name);
  if (const char* u = std::getenv("DEVSPACES_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace devspaces::test
