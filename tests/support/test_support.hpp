#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace devspaces::test {

/// Polls `cond` until it holds or `timeout` passes; true when it held. Tests never sleep a fixed
/// time.
bool wait_for(const std::function<bool()>& cond,
              std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Path of a built binary ("proxy/devspaces-proxy") under the build tree.
std::string binary_path(const std::string& relative);

/// Path of a file under the source tree.
std::string source_path(const std::string& relative);

}  // namespace devspaces::test
