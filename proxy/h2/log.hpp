#pragma once

#include <memory>

#include <spdlog/logger.h>

#include "proxy/logging.hpp"

namespace devspaces::proxy::h2 {

/// The "h2" component logger, made by the base library on first use with the configured sink,
/// format and level.
inline const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = logger("h2");
  return l;
}

}  // namespace devspaces::proxy::h2
