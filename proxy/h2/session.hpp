#pragma once

#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/io/connection_context.hpp"

namespace devspaces::proxy::h2 {

/// Serves one client connection that opened with the HTTP/2 preface (h2c, prior knowledge):
/// every stream is routed on its own (same router as HTTP/1), sent over a shared upstream
/// HTTP/2 connection of this worker, relayed with flow control end to end, traced and counted.
/// `ctx.initial_bytes` holds what the sniffer read (the preface and maybe more). On drain
/// (inbound) the client gets GOAWAY and its open streams finish. `preconnected` (a connection
/// the sniffer opened) is closed: upstreams come from the worker's shared connections.
/// Never throws.
boost::asio::awaitable<void> run_h2_session(
    boost::asio::ip::tcp::socket client, io::connection_context ctx,
    std::optional<boost::asio::ip::tcp::socket> preconnected = std::nullopt);

}  // namespace devspaces::proxy::h2
