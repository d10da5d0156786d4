#pragma once

#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/io/connection_context.hpp"

namespace devspaces::proxy {

/// The per-connection coroutine the listener starts for every accepted connection whose
/// original destination is known: sniffs the first bytes within --sniff-timeout (connecting
/// upstream meanwhile, so a server-first protocol is relayed as soon as the server speaks),
/// counts connections_total{direction,protocol}, then calls dispatch().
boost::asio::awaitable<void> serve_connection(io::connection_context ctx,
                                              boost::asio::ip::tcp::socket client);

/// THE DISPATCH POINT: every classified connection goes through here. `ctx.proto` says what the
/// sniffer saw, `ctx.initial_bytes` holds the bytes already read from the client, and
/// `upstream` is a connection to `ctx.original_dst` when one was opened while sniffing (else
/// nullopt). Raw TCP goes to serve_tcp; HTTP goes to the HTTP session (raw relay until then).
boost::asio::awaitable<void> dispatch(io::connection_context ctx,
                                      boost::asio::ip::tcp::socket client,
                                      std::optional<boost::asio::ip::tcp::socket> upstream);

/// Raw TCP: connects to ctx.original_dst unless `upstream` is given (closing the client when
/// that fails), then relays byte for byte until both sides are done or --idle-timeout.
boost::asio::awaitable<void> serve_tcp(io::connection_context ctx,
                                       boost::asio::ip::tcp::socket client,
                                       std::optional<boost::asio::ip::tcp::socket> upstream);

}  // namespace devspaces::proxy
