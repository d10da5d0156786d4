#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "init/config.hpp"
#include "init/rules.hpp"

namespace devspaces::init {

/// What a finished (or killed) command left behind.
struct command_result {
  int exit_code = -1;  ///< -1 when it could not start or was killed
  bool timed_out = false;
  std::string out;
  std::string err;  ///< stderr, or why it could not start
  bool ok() const { return exit_code == 0 && !timed_out; }
};

/// Runs argv with `input` on stdin; kills it after `timeout`. The seam unit tests replace.
using command_runner =
    std::function<command_result(const std::vector<std::string>& argv, std::string_view input,
                                 std::chrono::milliseconds timeout)>;

/// The real runner: fork + exec (PATH lookup), pipes for all three streams, SIGKILL on timeout.
command_result run_command(const std::vector<std::string>& argv, std::string_view input,
                           std::chrono::milliseconds timeout);

/// Which iptables flavour the rules go through.
enum class backend_kind { legacy, nft };

/// "legacy" / "nft".
std::string_view backend_name(backend_kind k);

/// Runs iptables-save / iptables-restore of one backend, each command with a timeout; legacy
/// commands take the xtables lock with --wait (XTABLES_LOCKFILE is honoured by iptables itself).
class iptables {
 public:
  iptables(backend_kind kind, command_runner runner, std::chrono::milliseconds timeout);

  backend_kind kind() const { return kind_; }
  /// "iptables-nft-restore", "ip6tables-legacy-save", ...
  std::string binary(family f, std::string_view tool) const;

  /// Full iptables-save dump of the family (all tables; a table is never created by reading).
  std::optional<std::string> save(family f, std::string& error) const;
  /// One `iptables-restore --noflush` transaction; error names the binary and its message.
  bool restore(family f, std::string_view document, std::string& error) const;
  /// Adds and removes a no-op rule in the nat table: does this binary work on this kernel?
  bool probe(family f, std::string& error) const;
  /// After a failure: which kernel modules are missing, found by trying one feature at a time.
  std::string diagnose(family f) const;

 private:
  command_result run(family f, std::string_view tool, std::vector<std::string> args,
                     std::string_view input) const;

  backend_kind kind_;
  command_runner runner_;
  std::chrono::milliseconds timeout_;
};

/// How the backend was chosen, for the log line.
struct backend_choice {
  backend_kind kind = backend_kind::nft;
  std::string reason;
};

/// Picks the backend: the forced one, or (auto) the one that already holds our chains, else the
/// one that holds rules, else nft when its probe works, else legacy. The chosen backend must pass
/// its probe for every family in `families`. nullopt and `error` when none works.
std::optional<backend_choice> choose_backend(backend_mode mode, const std::vector<family>& families,
                                             const command_runner& runner,
                                             std::chrono::milliseconds timeout, std::string& error);

/// True when the error text of iptables points at missing privileges.
bool looks_like_permission_error(std::string_view text);

/// Missing capabilities among NET_ADMIN and NET_RAW in a /proc/self/status text (pure).
std::vector<std::string> missing_capabilities(std::string_view proc_status);

}  // namespace devspaces::init
