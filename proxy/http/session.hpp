#pragma once

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/io/connection_context.hpp"

namespace devspaces::proxy::http {

/// Serves one client connection the sniffer classified as HTTP/1.x (RFC 9112; routing as in
/// proxy/routing/README.md): parses each request head in place, routes it, forwards it (with the
/// route header inserted where the rules say so) to an upstream from the worker's pool or a new
/// connection, streams bodies both ways, and keeps both sides alive when the messages allow.
/// Requests are answered in order; Upgrade/CONNECT become a raw tunnel after 101/2xx. Errors are
/// answered with a one-line text body and a lingering close. One trace record per exchange goes to
/// ctx.services->traces when set. `preconnected` is a connection to ctx.original_dst opened
/// while sniffing (used when the first request goes there). Never throws.
boost::asio::awaitable<void> run_http_session(
    boost::asio::ip::tcp::socket client, io::connection_context ctx,
    std::optional<boost::asio::ip::tcp::socket> preconnected = std::nullopt);

/// The full error answer the proxy sends for `status` with the one-line `reason`
/// ("devspaces-proxy: <reason>\n" as body, Connection: close).
std::string error_response(int status, std::string_view reason);

}  // namespace devspaces::proxy::http
