#pragma once

#include <chrono>
#include <functional>

#include <boost/asio/io_context.hpp>

namespace devspaces::test {

/// Runs `io`'s handlers on this thread until `done` holds or `limit` passes; returns `done()`.
/// For tests that drive an io_context themselves instead of running it on a thread.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::steady_clock::duration limit = std::chrono::seconds(5)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace devspaces::test
