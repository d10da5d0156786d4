#pragma once

namespace devspaces::proxy::trace {

/// `devspaces-proxy traces [URL]` (proxy/trace/README.md): follows URL/traces?follow=1 (default
/// http://127.0.0.1:15090) and prints each record with render_record. Reconnects with backoff
/// when the stream drops, skipping records it already printed; exits 0 on SIGINT/SIGTERM and
/// 2 on a malformed URL. argv[1] is "traces".
int run_traces_client(int argc, char** argv);

}  // namespace devspaces::proxy::trace
