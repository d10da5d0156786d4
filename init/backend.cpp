#include "init/backend.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace devspaces::init {

namespace {

using clock = std::chrono::steady_clock;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int count_rules(std::string_view save) {
  int n = 0;
  std::size_t pos = 0;
  while ((pos = save.find("\n-A ", pos)) != std::string_view::npos) {
    ++n;
    ++pos;
  }
  if (save.starts_with("-A ")) ++n;
  return n;
}

bool has_our_chains(std::string_view save) {
  for (const auto& [table, st] : parse_save(save))
    if (!st.empty()) return true;
  return false;
}

std::string first_line(std::string_view s) {
  while (!s.empty() && (s.front() == '\n' || s.front() == ' ')) s.remove_prefix(1);
  auto nl = s.find('\n');
  return std::string(s.substr(0, nl));
}

std::string describe(const command_result& r, std::string_view binary) {
  if (r.timed_out) return std::string(binary) + " timed out (killed)";
  std::string msg = r.err.empty() ? r.out : r.err;
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  for (auto& ch : msg)
    if (ch == '\n') ch = ' ';
  if (r.exit_code < 0) return std::string(binary) + ": " + msg;
  return std::string(binary) + " exited " + std::to_string(r.exit_code) + ": " + msg;
}

}  // namespace

command_result run_command(const std::vector<std::string>& argv, std::string_view input,
                           std::chrono::milliseconds timeout) {
  command_result r;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    r.err = std::string("pipe: ") + std::strerror(errno);
    for (int* p : {in, out, err}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
    return r;
  }
  // A command that exits without reading its stdin must not kill us with SIGPIPE: the write
  // then fails with EPIPE and the command's own exit status tells what happened.
  static const bool sigpipe_ignored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execvp(args[0], args.data());
    const char* msg = std::strerror(errno);
    [[maybe_unused]] auto n1 = ::write(2, "cannot run: ", 12);
    [[maybe_unused]] auto n2 = ::write(2, msg, std::strlen(msg));
    ::_exit(127);
  }
  close_fd(in[0]);
  close_fd(out[1]);
  close_fd(err[1]);
  if (pid < 0) {
    r.err = std::string("fork: ") + std::strerror(errno);
    close_fd(in[1]);
    close_fd(out[0]);
    close_fd(err[0]);
    return r;
  }
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  if (input.empty()) close_fd(in[1]);
  std::size_t written = 0;
  const auto deadline = clock::now() + timeout;
  char buf[4096];
  while (out[0] >= 0 || err[0] >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
    int n = ::poll(fds, 3, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      auto got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0)
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(got));
      else if (got == 0 || errno != EINTR)
        close_fd(i == 0 ? out[0] : err[0]);
    }
    if (in[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      auto w = ::write(in[1], input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) close_fd(in[1]);
      if (written == input.size()) close_fd(in[1]);
    }
  }
  close_fd(in[1]);
  close_fd(out[0]);
  close_fd(err[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!r.timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

std::string_view backend_name(backend_kind k) {
  return k == backend_kind::legacy ? "legacy" : "nft";
}

iptables::iptables(backend_kind kind, command_runner runner, std::chrono::milliseconds timeout)
    : kind_(kind), runner_(std::move(runner)), timeout_(timeout) {}

std::string iptables::binary(family f, std::string_view tool) const {
  std::string b = f == family::v4 ? "iptables-" : "ip6tables-";
  b += backend_name(kind_);
  if (!tool.empty()) b += "-" + std::string(tool);
  return b;
}

command_result iptables::run(family f, std::string_view tool, std::vector<std::string> args,
                             std::string_view input) const {
  std::vector<std::string> argv{binary(f, tool)};
  // The legacy backend serialises writers with the xtables lock; wait for it, but less long than
  // the command timeout so a stuck holder gives iptables' own message rather than a kill.
  if (kind_ == backend_kind::legacy && tool != "save") {
    auto secs = std::max<long>(1, static_cast<long>(timeout_.count() / 1000) - 1);
    argv.push_back("--wait=" + std::to_string(secs));
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return runner_(argv, input, timeout_);
}

std::optional<std::string> iptables::save(family f, std::string& error) const {
  auto r = run(f, "save", {}, {});
  if (!r.ok() && r.err.find("table names") != std::string::npos) {
    // Legacy lists tables from /proc/net/ip_tables_names, which a user namespace cannot read;
    // name the two tables we use instead (reading one may create it, empty).
    auto nat = run(f, "save", {"-t", "nat"}, {});
    auto filter = run(f, "save", {"-t", "filter"}, {});
    if (nat.ok() && filter.ok()) return nat.out + filter.out;
  }
  if (!r.ok()) {
    error = describe(r, binary(f, "save"));
    return std::nullopt;
  }
  return r.out;
}

bool iptables::restore(family f, std::string_view document, std::string& error) const {
  auto r = run(f, "restore", {"--noflush"}, document);
  if (!r.ok()) {
    error = describe(r, binary(f, "restore"));
    return false;
  }
  return true;
}

bool iptables::probe(family f, std::string& error) const {
  auto add = run(f, "", {"-t", "nat", "-A", "OUTPUT", "-p", "255", "-j", "RETURN"}, {});
  if (!add.ok()) {
    error = describe(add, binary(f, ""));
    return false;
  }
  auto del = run(f, "", {"-t", "nat", "-D", "OUTPUT", "-p", "255", "-j", "RETURN"}, {});
  if (!del.ok()) {
    error = describe(del, binary(f, ""));
    return false;
  }
  return true;
}

std::string iptables::diagnose(family f) const {
  const bool legacy = kind_ == backend_kind::legacy;
  const std::string compat = legacy ? "" : " (through nft_compat)";
  struct feature {
    std::string rule;
    std::string modules;
  };
  const std::vector<feature> features = {
      {"",
       legacy ? (f == family::v4 ? "iptable_nat" : "ip6table_nat") : "nf_tables, nft_chain_nat"},
      {"-p tcp -m tcp --dport 1 -j RETURN", "xt_tcpudp" + compat},
      {"-m owner --uid-owner 0 -j RETURN", "xt_owner" + compat},
      {"-p tcp -m multiport --dports 1,2 -j RETURN", "xt_multiport" + compat},
      {"-p tcp -j REDIRECT --to-ports 1", "xt_REDIRECT, nf_nat" + compat},
  };
  std::vector<std::string> missing;
  std::string first_error;
  const std::string chain = "DEVSPACES_PROBE";
  for (const auto& ft : features) {
    std::string doc = "*nat\n:" + chain + " - [0:0]\n";
    if (!ft.rule.empty()) doc += "-A " + chain + " " + ft.rule + "\n";
    doc += "COMMIT\n";
    auto r = run(f, "restore", {"--noflush"}, doc);
    if (!r.ok()) {
      missing.push_back(ft.modules);
      if (first_error.empty()) first_error = first_line(r.err);
      if (ft.rule.empty()) break;  // without the nat table nothing else can be tried
    }
  }
  run(f, "restore", {"--noflush"}, "*nat\n-F " + chain + "\n-X " + chain + "\nCOMMIT\n");
  if (missing.empty()) return {};
  if (looks_like_permission_error(first_error))
    return "permission denied (" + first_error + "): run as root with NET_ADMIN and NET_RAW";
  if (first_error.find("xtables lock") != std::string::npos) {
    const char* lock = std::getenv("XTABLES_LOCKFILE");
    return "another process holds the xtables lock (" +
           std::string(lock ? lock : "/run/xtables.lock") + ") for longer than --command-timeout";
  }
  std::string out = "kernel support missing for the " + std::string(family_name(f)) +
                    " nat rules (" + first_error + "): load ";
  for (std::size_t i = 0; i < missing.size(); ++i) out += (i ? "; " : "") + missing[i];
  return out;
}

bool looks_like_permission_error(std::string_view t) {
  return t.find("Permission denied") != std::string_view::npos ||
         t.find("Operation not permitted") != std::string_view::npos ||
         t.find("must be root") != std::string_view::npos;
}

std::vector<std::string> missing_capabilities(std::string_view status) {
  auto pos = status.find("CapEff:");
  if (pos == std::string_view::npos) return {"NET_ADMIN", "NET_RAW"};
  auto line = status.substr(pos + 7, status.find('\n', pos) - pos - 7);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  unsigned long long caps = std::strtoull(std::string(line).c_str(), nullptr, 16);
  std::vector<std::string> out;
  if (!(caps & (1ull << 12))) out.push_back("NET_ADMIN");
  if (!(caps & (1ull << 13))) out.push_back("NET_RAW");
  return out;
}

std::optional<backend_choice> choose_backend(backend_mode mode, const std::vector<family>& families,
                                             const command_runner& runner,
                                             std::chrono::milliseconds timeout,
                                             std::string& error) {
  auto works = [&](backend_kind k, std::string& why) {
    iptables ipt(k, runner, timeout);
    for (auto f : families)
      if (!ipt.probe(f, why)) return false;
    return true;
  };
  if (mode != backend_mode::automatic) {
    backend_kind k = mode == backend_mode::legacy ? backend_kind::legacy : backend_kind::nft;
    std::string why;
    if (!works(k, why)) {
      iptables ipt(k, runner, timeout);
      std::string diag;
      for (auto f : families)
        if (diag.empty()) diag = ipt.diagnose(f);
      error = "iptables " + std::string(backend_name(k)) + " does not work here: " + why +
              (diag.empty() ? "" : "; " + diag);
      return std::nullopt;
    }
    return backend_choice{k, "forced by --iptables"};
  }
  struct seen {
    backend_kind kind;
    int rules = 0;
    bool ours = false;
  };
  std::vector<seen> all;
  for (auto k : {backend_kind::legacy, backend_kind::nft}) {
    seen s{k};
    iptables ipt(k, runner, timeout);
    for (auto f : families) {
      std::string ignored;
      if (auto text = ipt.save(f, ignored)) {
        s.rules += count_rules(*text);
        s.ours = s.ours || has_our_chains(*text);
      }
    }
    all.push_back(s);
  }
  const seen& legacy = all[0];
  const seen& nft = all[1];
  std::vector<std::pair<backend_kind, std::string>> order;
  if (legacy.ours != nft.ours) {
    auto k = legacy.ours ? backend_kind::legacy : backend_kind::nft;
    order.push_back({k, "our chains are already in iptables-" + std::string(backend_name(k))});
  } else if (legacy.rules > nft.rules) {
    order.push_back({backend_kind::legacy, "the namespace already has " +
                                               std::to_string(legacy.rules) + " legacy rules"});
  } else if (nft.rules > 0) {
    order.push_back({backend_kind::nft,
                     "the namespace already has " + std::to_string(nft.rules) + " nft rules"});
  }
  if (order.empty()) {
    order.push_back({backend_kind::nft, "no rules yet, nft works"});
    order.push_back({backend_kind::legacy, "no rules yet, nft does not work, legacy does"});
  }
  std::string errors;
  for (const auto& [k, reason] : order) {
    std::string why;
    if (works(k, why)) return backend_choice{k, reason};
    errors += (errors.empty() ? "" : "; ") + why;
  }
  iptables ipt(order.front().first, runner, timeout);
  std::string diag;
  for (auto f : families)
    if (diag.empty()) diag = ipt.diagnose(f);
  error = "no working iptables backend (" + errors + ")" + (diag.empty() ? "" : "; " + diag);
  return std::nullopt;
}

}  // namespace devspaces::init
