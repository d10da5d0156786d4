#pragma once

namespace devspaces::proxy::trace {

/// `devspaces-proxy traces [URL...] [flags]`: follows URL/traces?follow=1 of each URL (default
/// http://127.0.0.1:15090; "host:port" without a scheme is accepted) and prints each record as
/// it arrives with render_record (durations, colours on a terminal) or raw (-o json). Flags:
/// --last N, --no-follow, --har FILE, --color/--no-color, and the record filters (passed to
/// the server as query parameters). Reconnects with backoff when a stream drops, skipping
/// records it already printed; exits 0 on SIGINT/SIGTERM (after writing the HAR file), 2 on
/// a bad flag or URL, 1 when --no-follow could not read a URL. argv[1] is "traces".
int run_traces_client(int argc, char** argv);

}  // namespace devspaces::proxy::trace
