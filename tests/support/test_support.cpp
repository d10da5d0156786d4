#include "tests/support/test_support.hpp"

#include <thread>

namespace devspaces::test {

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

std::string binary_path(const std::string& relative) {
  return std::string(DEVSPACES_BINARY_DIR) + "/" + relative;
}

std::string source_path(const std::string& relative) {
  return std::string(DEVSPACES_SOURCE_DIR) + "/" + relative;
}

}  // namespace devspaces::test
