#pragma once

namespace devspaces::proxy::inject {

/// `devspaces-proxy webhook [flags]`: the admission webhook. HTTPS on --listen (POST /inject,
/// GET /spaces, /healthz, /readyz), plain HTTP on --spaces-listen (GET /spaces for the proxies'
/// --spaces-url, /healthz, /readyz). The certificate and key are reloaded when they change.
/// Exit: 0 after SIGTERM/SIGINT, 1 runtime failure (port in use), 2 usage or bad files.
int run_webhook_cli(int argc, char** argv);

/// `devspaces-proxy wait-ready [--admin-port P] [--timeout D]`: waits until the proxy's
/// /readyz answers 200 (the classic sidecar's postStart). Exit 0 ready, 1 timed out.
int run_wait_ready_cli(int argc, char** argv);

}  // namespace devspaces::proxy::inject
