#include "proxy/routing/names.hpp"

#include <boost/asio/ip/address.hpp>

namespace devspaces::proxy::routing {

namespace {

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Host without port, lowercased, without one trailing dot.
std::string normalize_host(std::string_view host) {
  std::string h = to_lower(strip_port(host));
  if (!h.empty() && h.back() == '.') h.pop_back();
  return h;
}

std::vector<std::string_view> split_labels(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

}  // namespace

bool is_dns_label(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!is_lower_alnum(name.front()) || !is_lower_alnum(name.back())) return false;
  for (char c : name) {
    if (!is_lower_alnum(c) && c != '-') return false;
  }
  return true;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

route_header parse_route_header(std::span<const std::string_view> values) {
  route_header h;
  if (values.empty()) return h;
  h.status = route_header::state::invalid;
  std::string first;
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::string v = to_lower(trim(values[i]));
    if (!is_dns_label(v)) return h;
    if (i == 0) {
      first = std::move(v);
    } else if (v != first) {
      return h;
    }
  }
  h.status = route_header::state::valid;
  h.space = std::move(first);
  return h;
}

std::string_view strip_port(std::string_view host) {
  host = trim(host);
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.find(':');
  // More than one colon: a bare IPv6 literal, which has no port.
  if (colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
    return host.substr(0, colon);
  }
  return host;
}

bool is_ip_literal(std::string_view host) {
  auto h = strip_port(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) return false;
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(std::string(h), ec);
  return !ec;
}

std::optional<std::string> inbound_host_space(std::string_view host) {
  std::string h = normalize_host(host);
  auto dot = h.find('.');
  if (dot == std::string::npos) return std::nullopt;
  std::string_view rest = std::string_view(h).substr(dot + 1);
  if (rest.size() < 3 || rest.substr(0, 2) != "s.") return std::nullopt;
  std::string space = h.substr(0, dot);
  if (!is_dns_label(space)) return std::nullopt;
  return space;
}

std::optional<service_host> parse_service_host(std::string_view host,
                                               std::string_view cluster_domain) {
  if (is_ip_literal(host)) return std::nullopt;
  std::string h = normalize_host(host);
  if (h.empty()) return std::nullopt;
  auto labels = split_labels(h);
  auto is_service_label = [](std::string_view l) {
    return is_dns_label(l) && l.front() >= 'a' && l.front() <= 'z';
  };
  if (!is_service_label(labels[0])) return std::nullopt;
  service_host out{std::string(labels[0]), std::nullopt};
  if (labels.size() == 1) return out;
  if (!is_dns_label(labels[1])) return std::nullopt;
  out.ns = std::string(labels[1]);
  if (labels.size() == 2) return out;
  if (labels[2] != "svc") return std::nullopt;
  if (labels.size() == 3) return out;
  // svc.ns.svc.<cluster-domain>: the rest must be exactly the cluster domain.
  std::string domain = to_lower(cluster_domain);
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  std::size_t prefix = labels[0].size() + labels[1].size() + labels[2].size() + 3;
  if (domain.empty() || h.size() <= prefix || std::string_view(h).substr(prefix) != domain) {
    return std::nullopt;
  }
  return out;
}

std::vector<std::string> candidate_names(std::string_view service,
                                         std::span<const std::string> chain,
                                         std::string_view cluster_domain) {
  std::vector<std::string> out;
  out.reserve(chain.size());
  for (const auto& space : chain) {
    std::string name;
    name.reserve(service.size() + space.size() + cluster_domain.size() + 6);
    name.append(service).append(".").append(space).append(".svc.").append(cluster_domain);
    out.push_back(std::move(name));
  }
  return out;
}

}  // namespace devspaces::proxy::routing
