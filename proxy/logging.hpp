#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace devspaces::proxy {

/// Configures every logger: level (trace, debug, info, warn, error) and format ("text", or
/// "json": one object a line with ts, level, logger, msg). Loggers made later follow it too.
void setup_logging(std::string_view level, std::string_view format);

/// The named logger ("listener", "conn", "admin", "main", ...), created on first use with the
/// configured sink, format and level. Connection lines start with "[C<id>] ".
std::shared_ptr<spdlog::logger> logger(const std::string& name);

/// Escapes text for a JSON string body (quotes, backslashes, control characters).
std::string json_escape(std::string_view text);

}  // namespace devspaces::proxy
