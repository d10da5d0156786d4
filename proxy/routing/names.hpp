#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devspaces::proxy::routing {

/// True when `name` is a DNS label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
/// Case-sensitive: lowercase first (space names are compared lowercase).
bool is_dns_label(std::string_view name);

/// ASCII lowercase copy.
std::string to_lower(std::string_view s);

/// The route header(s) of one request, checked (proxy/routing/README.md, "The route header").
struct route_header {
  enum class state { absent, valid, invalid };
  state status = state::absent;
  std::string space;  ///< lowercase space name when valid
};

/// Checks every value of the route header in a request: none → absent; each value trimmed of
/// spaces/tabs and lowercased must be a DNS label and all values must agree → valid; else
/// invalid (ignored for routing, forwarded untouched).
route_header parse_route_header(std::span<const std::string_view> values);

/// Host header value without its port ("a:80" → "a", "[::1]:80" → "[::1]"), trimmed.
std::string_view strip_port(std::string_view host);

/// True when the host (port stripped, brackets allowed) is an IPv4 or IPv6 literal.
bool is_ip_literal(std::string_view host);

/// Inbound host pattern: "<space>.s.<anything>" (port stripped, lowercased) with <space> a DNS
/// label and <anything> non-empty → the space.
std::optional<std::string> inbound_host_space(std::string_view host);

/// A Host that names a cluster service: `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<domain>`.
struct service_host {
  std::string service;            ///< lowercase
  std::optional<std::string> ns;  ///< the explicit namespace, if any (lowercase)
};

/// Parses a Host (port stripped, lowercased, one trailing dot ignored) as a cluster service
/// name. IP literals, names with a different shape, and labels that are not DNS labels (the
/// service name must start with a letter, as Kubernetes service names do) → nullopt. Whether an
/// explicit namespace is in the route chain is the caller's check.
std::optional<service_host> parse_service_host(std::string_view host,
                                               std::string_view cluster_domain);

/// Candidate names `svc.<space>.svc.<cluster-domain>` for each space of `chain`, in order.
std::vector<std::string> candidate_names(std::string_view service,
                                         std::span<const std::string> chain,
                                         std::string_view cluster_domain);

}  // namespace devspaces::proxy::routing
