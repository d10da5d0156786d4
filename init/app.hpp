#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "init/backend.hpp"
#include "init/config.hpp"

namespace devspaces::init {

/// Exit codes of devspaces-proxy-init (README, "The init container").
enum exit_code : int { exit_ok = 0, exit_failed = 1, exit_usage = 2, exit_verify = 3 };

/// What `print` writes (pure): the restore document of each family, then the new resolv.conf.
/// `resolv_text` is the current resolv.conf (nullopt when --resolv-conf is empty).
std::string render_print(const config& c, bool ipv6, const std::optional<std::string>& resolv_text);

/// The outside world the commands touch, replaceable in tests.
struct system_access {
  command_runner runner = run_command;
  /// Reads /proc files and resolv.conf; nullopt when missing.
  std::function<std::optional<std::string>(const std::string&)> read_file;
};

/// Runs the configured command; messages go to `out` (what was done) and `err` (problems).
int run_command_line(const config& c, const system_access& sys, std::ostream& out,
                     std::ostream& err);

}  // namespace devspaces::init
