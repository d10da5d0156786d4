#include "init/app.hpp"

#include <algorithm>
#include <cstdlib>

#include "init/loopback.hpp"
#include "init/resolv_conf.hpp"
#include "init/rules.hpp"
#include "init/verify.hpp"

namespace devspaces::init {

namespace {

constexpr std::string_view tag = "devspaces-proxy-init: ";
constexpr auto probe_timeout = std::chrono::milliseconds(2000);

std::vector<std::string> servers_of(const std::vector<std::string>& all, family f) {
  std::vector<std::string> out;
  for (const auto& s : all)
    if ((s.find(':') != std::string::npos) == (f == family::v6)) out.push_back(s);
  return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep = " ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : std::string(sep)) + s;
  return out;
}

/// The guardrail chain as it appears in iptables-save once guard_restore() is applied.
table_state guard_state() {
  table_state st;
  const std::string g(guard_chain);
  st.chains[g] = {"-A " + g + " -j DROP"};
  st.jumps = {"-A INPUT -p tcp -j " + g, "-A OUTPUT -p tcp -j " + g};
  return st;
}

/// Everything a command needs to know before it touches anything.
struct context {
  const config& c;
  const system_access& sys;
  std::ostream& out;
  std::ostream& err;
  std::vector<family> families;
  std::optional<std::string> resolv_text;
  std::vector<std::string> nameservers;

  int fail(const std::string& msg) const {
    err << tag << "error: " << msg << "\n";
    return exit_failed;
  }
};

/// Resolves --ipv6 and reads resolv.conf; an error message when that is impossible.
std::optional<std::string> prepare(context& ctx) {
  // IPv6 is live when the namespace has any IPv6 address (lo gets ::1 as soon as it is up).
  // With none (no IPv6 in the kernel, or disable_ipv6 set) no IPv6 connection can be made, so
  // skipping the ip6tables rules lets nothing past the proxy.
  const auto if_inet6 = ctx.sys.read_file("/proc/net/if_inet6");
  const bool kernel_v6 = if_inet6 && if_inet6->find_first_not_of(" \n") != std::string::npos;
  ctx.families = {family::v4};
  if (ctx.c.ipv6 == ipv6_mode::on && !kernel_v6)
    return "--ipv6 on, but this namespace has no IPv6 (/proc/net/if_inet6 is missing or empty)";
  if (ctx.c.ipv6 == ipv6_mode::on || (ctx.c.ipv6 == ipv6_mode::automatic && kernel_v6))
    ctx.families.push_back(family::v6);
  if (!ctx.c.resolv_conf.empty()) {
    ctx.resolv_text = ctx.sys.read_file(ctx.c.resolv_conf);
    if (!ctx.resolv_text)
      return "cannot read " + ctx.c.resolv_conf + " (use --resolv-conf '' to leave DNS alone)";
    ctx.nameservers = resolv_nameservers(*ctx.resolv_text);
  }
  return std::nullopt;
}

std::optional<std::string> check_capabilities(const context& ctx) {
  auto status = ctx.sys.read_file("/proc/self/status");
  if (!status) return std::nullopt;
  auto missing = missing_capabilities(*status);
  if (missing.empty()) return std::nullopt;
  return "missing capabilities " + join(missing, ", ") +
         ": the init container needs securityContext.capabilities.add [NET_ADMIN, NET_RAW] "
         "and runAsUser 0";
}

std::vector<std::string> wanted_domains(const config& c) {
  return space_search_domains(c.space, c.parent_spaces, c.cluster_domain);
}

/// Reads one family's state of our chains, in the nat and filter tables.
std::optional<std::map<std::string, table_state>> read_state(const iptables& ipt, family f,
                                                             std::string& error) {
  auto text = ipt.save(f, error);
  if (!text) return std::nullopt;
  return parse_save(*text);
}

std::string failure_message(const iptables& ipt, family f, const std::string& error) {
  std::string diag = ipt.diagnose(f);
  std::string msg = error;
  if (!diag.empty())
    msg += "; " + diag;
  else if (looks_like_permission_error(error))
    msg += "; run as root with NET_ADMIN and NET_RAW";
  return msg;
}

int do_print(context& ctx) {
  ctx.out << render_print(ctx.c, ctx.families.size() > 1, ctx.resolv_text);
  return exit_ok;
}

int do_apply(context& ctx) {
  const auto& c = ctx.c;
  std::string error;
  auto choice = choose_backend(c.iptables, ctx.families, ctx.sys.runner, c.command_timeout, error);
  if (!choice) return ctx.fail(error);
  iptables ipt(choice->kind, ctx.sys.runner, c.command_timeout);
  ctx.out << tag << "backend iptables-" << backend_name(choice->kind) << " (" << choice->reason
          << ")";
  if (choice->kind == backend_kind::legacy) {
    const char* lock = std::getenv("XTABLES_LOCKFILE");
    ctx.out << ", xtables lock " << (lock ? lock : "/run/xtables.lock");
  }
  ctx.out << "\n";

  struct plan {
    family f;
    rule_set rules;
    table_state expected;
    table_state nat;
    bool leftover_guard = false;
  };
  std::vector<plan> plans;
  for (auto f : ctx.families) {
    plan p{f, build_rules(c, f, servers_of(ctx.nameservers, f)), {}, {}, false};
    p.expected = expected_state(p.rules);
    auto st = read_state(ipt, f, error);
    if (!st) return ctx.fail(error);
    p.nat = (*st)["nat"];
    p.leftover_guard = !(*st)["filter"].empty();
    plans.push_back(std::move(p));
  }

  std::vector<family> changed;
  auto rollback = [&](const std::string& msg) {
    for (auto f : changed) {
      std::string e;
      auto st = read_state(ipt, f, e);
      if (!st) continue;
      ipt.restore(f, cleanup_restore("nat", (*st)["nat"]), e);
      ipt.restore(f, cleanup_restore("filter", (*st)["filter"]), e);
    }
    return ctx.fail(msg + (changed.empty() ? "" : " (rules of this run removed again)"));
  };

  for (auto& p : plans) {
    const auto fam = std::string(family_name(p.f));
    if (p.leftover_guard) {
      std::string e;
      auto st = read_state(ipt, p.f, e);
      if (!st || !ipt.restore(p.f, cleanup_restore("filter", (*st)["filter"]), e))
        return rollback(fam + ": cannot remove leftover guardrails: " + e);
      ctx.out << tag << fam << ": removed guardrails left by an interrupted run\n";
    }
    if (p.nat == p.expected) {
      ctx.out << tag << fam << ": rules already in place, nothing to do\n";
      continue;
    }
    changed.push_back(p.f);
    if (p.nat.empty()) {
      if (!ipt.restore(p.f, render_restore(p.rules), error))
        return rollback(fam + ": " + failure_message(ipt, p.f, error));
      ctx.out << tag << fam << ": applied " << p.rules.rules.size() << " rules in "
              << p.rules.chains.size() << " DEVSPACES_* chains\n";
    } else {
      auto drift = describe_drift(p.nat, p.expected);
      // Each restore is one transaction; the guardrails keep TCP from slipping past the proxy
      // even if a backend does not swap the chains atomically.
      if (!ipt.restore(p.f, guard_restore(), error))
        return rollback(fam + ": cannot insert guardrails: " + failure_message(ipt, p.f, error));
      bool ok = ipt.restore(p.f, reconcile_restore(p.rules, p.nat), error);
      std::string e2;
      bool unguarded = ipt.restore(p.f, cleanup_restore("filter", guard_state()), e2);
      if (!ok) return rollback(fam + ": reconciling failed: " + failure_message(ipt, p.f, error));
      if (!unguarded) return rollback(fam + ": cannot remove guardrails: " + e2);
      ctx.out << tag << fam << ": replaced drifted rules (" << join(drift, "; ") << ")\n";
    }
    auto st = read_state(ipt, p.f, error);
    if (!st) return rollback(error);
    if ((*st)["nat"] != p.expected)
      return rollback(fam + ": rules differ from what was written right after writing them (" +
                      join(describe_drift((*st)["nat"], p.expected), "; ") + ")");
  }

  if (std::find(ctx.families.begin(), ctx.families.end(), family::v6) != ctx.families.end()) {
    auto if_inet6 = ctx.sys.read_file("/proc/net/if_inet6");
    if (!if_inet6 || !has_passthrough_v6(*if_inet6)) {
      if (!add_passthrough_v6(error)) return rollback(error);
      ctx.out << tag << "ipv6: added ::6/128 to lo (the proxy's passthrough source)\n";
    }
  }

  if (ctx.resolv_text) {
    auto edit = add_search_domains(*ctx.resolv_text, wanted_domains(c));
    if (edit.changed && !write_in_place(c.resolv_conf, edit.text, error)) return rollback(error);
    ctx.out << tag << c.resolv_conf << ": search " << join(edit.search);
    if (!edit.changed)
      ctx.out << " (already in place)";
    else if (!edit.added.empty())
      ctx.out << " (added " << join(edit.added) << ")";
    if (!edit.dropped.empty())
      ctx.out << "; left out " << join(edit.dropped)
              << " to stay within 6 domains and a 255-byte search line (classic glibc, musl)";
    ctx.out << "\n";
  }
  return exit_ok;
}

int do_cleanup(context& ctx) {
  const auto& c = ctx.c;
  std::vector<backend_kind> kinds;
  if (c.iptables == backend_mode::legacy)
    kinds = {backend_kind::legacy};
  else if (c.iptables == backend_mode::nft)
    kinds = {backend_kind::nft};
  else
    kinds = {backend_kind::legacy, backend_kind::nft};
  // Cleanup removes ours from every family that can be read, whatever --ipv6 says now.
  for (auto k : kinds) {
    iptables ipt(k, ctx.sys.runner, c.command_timeout);
    for (auto f : {family::v4, family::v6}) {
      std::string error;
      auto st = read_state(ipt, f, error);
      if (!st) {
        // With auto, a backend that cannot even be read holds nothing of ours. A forced backend
        // must be readable for IPv4, and for IPv6 when IPv6 is on.
        const bool needed = f == family::v4 || ctx.families.size() > 1;
        if (needed && c.iptables != backend_mode::automatic) return ctx.fail(error);
        continue;
      }
      for (const char* table : {"nat", "filter"}) {
        auto doc = cleanup_restore(table, (*st)[table]);
        if (doc.empty()) continue;
        if (!ipt.restore(f, doc, error)) return ctx.fail(failure_message(ipt, f, error));
        ctx.out << tag << "iptables-" << backend_name(k) << " " << family_name(f) << ": removed "
                << (*st)[table].chains.size() << " DEVSPACES_* chains from " << table << "\n";
      }
    }
  }
  if (auto if_inet6 = ctx.sys.read_file("/proc/net/if_inet6");
      if_inet6 && has_passthrough_v6(*if_inet6)) {
    std::string error;
    if (!remove_passthrough_v6(error)) return ctx.fail(error);
    ctx.out << tag << "ipv6: removed ::6/128 from lo\n";
  }
  if (ctx.resolv_text) {
    auto edit = remove_search_domains(*ctx.resolv_text);
    std::string error;
    if (edit.changed && !write_in_place(c.resolv_conf, edit.text, error)) return ctx.fail(error);
    ctx.out << tag << c.resolv_conf << ": "
            << (edit.changed ? "search list restored" : "nothing of ours there") << "\n";
  }
  ctx.out << tag << "cleanup done\n";
  return exit_ok;
}

int do_verify(context& ctx) {
  const auto& c = ctx.c;
  std::string error;
  auto choice = choose_backend(c.iptables, ctx.families, ctx.sys.runner, c.command_timeout, error);
  if (!choice) return ctx.fail(error);
  iptables ipt(choice->kind, ctx.sys.runner, c.command_timeout);
  std::vector<std::string> problems;
  auto report = [&](const std::string& what, const probe_outcome& r) {
    using status = probe_outcome::status;
    if (r.result == status::failed) problems.push_back(what + ": " + r.message);
    ctx.out << tag << what << ": "
            << (r.result == status::ok        ? "ok, "
                : r.result == status::skipped ? "skipped, "
                                              : "FAILED, ")
            << r.message << "\n";
  };
  std::uint32_t other_id = 65534;
  while (other_id == c.proxy_uid || other_id == c.proxy_gid) --other_id;

  for (auto f : ctx.families) {
    const auto fam = std::string(family_name(f));
    auto expected = expected_state(build_rules(c, f, servers_of(ctx.nameservers, f)));
    auto st = read_state(ipt, f, error);
    if (!st) return ctx.fail(error);
    auto drift = describe_drift((*st)["nat"], expected);
    if (!(*st)["filter"].empty()) drift.push_back("guardrails still in the filter table");
    if (!drift.empty()) {
      problems.push_back(fam + " rules: " + join(drift, "; "));
      ctx.out << tag << fam << " rules (iptables-" << backend_name(choice->kind) << "): FAILED, "
              << join(drift, "; ") << "\n";
    } else {
      ctx.out << tag << fam << " rules (iptables-" << backend_name(choice->kind)
              << "): ok, in place\n";
    }
    if (auto target = outbound_probe_target(c, f)) {
      endpoint_text listen{f == family::v4 ? "127.0.0.1" : "::1", c.outbound_port};
      report(fam + " outbound",
             probe_redirect(f, listen, *target, other_id, other_id, probe_timeout));
    }
    auto port = inbound_probe_port(c);
    auto addr = pod_address(f);
    if (port && addr) {
      endpoint_text listen{f == family::v4 ? "0.0.0.0" : "::", c.inbound_port};
      report(fam + " inbound (proxy to own pod address)",
             probe_redirect(f, listen, {*addr, *port}, c.proxy_uid, c.proxy_gid, probe_timeout));
    }
    if (f == family::v6) {
      auto if_inet6 = ctx.sys.read_file("/proc/net/if_inet6");
      if (!if_inet6 || !has_passthrough_v6(*if_inet6)) {
        problems.push_back("::6/128 is not on lo");
        ctx.out << tag << "ipv6 passthrough source: FAILED, ::6/128 is not on lo\n";
      }
    }
  }
  if (ctx.resolv_text) {
    auto wanted = wanted_domains(c);
    auto edit = add_search_domains(*ctx.resolv_text, wanted);
    if (edit.changed) {
      problems.push_back(c.resolv_conf + " lacks the space search list");
      ctx.out << tag << c.resolv_conf << ": FAILED, search list should be " << join(edit.search)
              << "\n";
    } else {
      ctx.out << tag << c.resolv_conf << ": ok, search " << join(edit.search) << "\n";
    }
  }
  if (!problems.empty()) {
    ctx.err << tag << "verify found " << problems.size() << " problem(s): " << join(problems, "; ")
            << "\n";
    return exit_verify;
  }
  ctx.out << tag << "verify ok\n";
  return exit_ok;
}

}  // namespace

std::string render_print(const config& c, bool ipv6,
                         const std::optional<std::string>& resolv_text) {
  std::vector<std::string> ns;
  if (resolv_text) ns = resolv_nameservers(*resolv_text);
  std::string out;
  out += "# devspaces-proxy-init print: ipv4, for iptables-restore --noflush\n";
  out += render_restore(build_rules(c, family::v4, servers_of(ns, family::v4)));
  if (ipv6) {
    out += "# devspaces-proxy-init print: ipv6, for ip6tables-restore --noflush\n";
    out += render_restore(build_rules(c, family::v6, servers_of(ns, family::v6)));
  } else {
    out += "# devspaces-proxy-init print: ipv6 off, no ip6tables rules\n";
  }
  if (resolv_text) {
    auto edit = add_search_domains(*resolv_text, wanted_domains(c));
    out += "# devspaces-proxy-init print: " + c.resolv_conf + " after apply\n";
    out += edit.text;
    if (!edit.text.empty() && edit.text.back() != '\n') out += '\n';
  } else {
    out += "# devspaces-proxy-init print: resolv.conf left alone (--resolv-conf is empty)\n";
  }
  return out;
}

int run_command_line(const config& c, const system_access& sys, std::ostream& out,
                     std::ostream& err) {
  context ctx{c, sys, out, err, {}, {}, {}};
  if (auto e = prepare(ctx)) return ctx.fail(*e);
  if (c.command == "print") return do_print(ctx);
  if (auto e = check_capabilities(ctx)) return ctx.fail(*e);
  if (c.command == "cleanup") return do_cleanup(ctx);
  if (c.command == "verify") return do_verify(ctx);
  return do_apply(ctx);
}

}  // namespace devspaces::init
