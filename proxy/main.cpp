#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "proxy/admin/admin_server.hpp"
#include "proxy/config.hpp"
#include "proxy/inject/manifest.hpp"
#include "proxy/inject/webhook.hpp"
#include "proxy/logging.hpp"
#include "proxy/metrics.hpp"
#include "proxy/routing/service.hpp"
#include "proxy/server.hpp"
#include "proxy/trace/hub.hpp"
#include "proxy/trace/otlp.hpp"
#include "proxy/trace/uploader.hpp"

#include "proxy/trace/traces_client.hpp"

namespace {

using namespace devspaces::proxy;

std::optional<std::string> getenv_opt(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

int fail(int code, const std::string& line) {
  std::fprintf(stderr, "devspaces-proxy: %s\n", line.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "traces") {
    return trace::run_traces_client(argc, argv);
  }
  if (argc > 1 && std::string_view(argv[1]) == "inject") return inject::run_inject_cli(argc, argv);
  if (argc > 1 && std::string_view(argv[1]) == "webhook")
    return inject::run_webhook_cli(argc, argv);
  if (argc > 1 && std::string_view(argv[1]) == "wait-ready")
    return inject::run_wait_ready_cli(argc, argv);

  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parse_proxy_config(args, getenv_opt);
  if (parsed.help) {
    std::fputs(proxy_help().c_str(), stdout);
    return 0;
  }
  if (parsed.help_markdown) {
    config scratch;
    std::fputs(devspaces::common::render_markdown(proxy_options(scratch)).c_str(), stdout);
    return 0;
  }
  if (parsed.version) {
    std::puts(devspaces::common::version_text("devspaces-proxy", DEVSPACES_VERSION,
                                              DEVSPACES_COMMIT, DEVSPACES_BUILD_TYPE)
                  .c_str());
    return 0;
  }
  if (parsed.error) return fail(2, *parsed.error);
  if (!parsed.positional.empty())
    return fail(2, "unexpected argument '" + parsed.positional.front() + "' (see --help)");
  if (parsed.cfg.pod_name.empty()) parsed.cfg.pod_name = hostname();
  auto cfg = std::make_shared<const config>(std::move(parsed.cfg));

  setup_logging(cfg->log_level, cfg->log_format);
  auto log = logger("main");
  // Components that cannot link proxy/logging look their loggers up by name: create them here
  // so they follow --log-level and --log-format.
  for (const char* component : {"routing", "http", "h2", "trace", "access"}) logger(component);

  // Signals are taken synchronously by this thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  proxy_metrics metrics;
  auto routing = routing::routing_service::create(cfg, metrics);
  if (!routing.service) return fail(2, routing.error);

  trace::hub traces(trace::make_hub_options(*cfg), &metrics);

  // A small control loop for background tasks: the spaces-file watcher and the trace uploader.
  boost::asio::io_context control{1};
  auto control_guard = boost::asio::make_work_guard(control);
  if (!cfg->trace_upstream.empty()) {
    trace::uploader_options uo;
    uo.url = cfg->trace_upstream;
    if (auto err = trace::start_uploader(traces, control.get_executor(), uo, &metrics))
      return fail(2, "--trace-upstream: " + *err);
  }
  if (!cfg->otlp_endpoint.empty()) {
    trace::uploader_options uo;
    uo.url = cfg->otlp_endpoint;
    trace::otlp_resource resource;
    resource.pod = cfg->pod_name;
    resource.space = cfg->space;
    resource.version = DEVSPACES_VERSION;
    if (auto err = trace::start_otlp_exporter(traces, control.get_executor(), uo,
                                              std::move(resource), &metrics))
      return fail(2, "--otlp-endpoint: " + *err);
  }
  routing.service->start_watcher(control.get_executor());
  std::thread control_thread([&] { control.run(); });
  auto stop_control = [&] {
    control_guard.reset();
    control.stop();
    if (control_thread.joinable()) control_thread.join();
    routing.service->stop_watcher();
  };

  server_options opts;
  opts.traces = &traces;
  auto* rs = routing.service.get();
  opts.make_router = [rs, log](boost::asio::any_io_executor ex) {
    std::string err;
    auto r = rs->make_router(std::move(ex), &err);
    if (!r) log->error("HTTP routing disabled on a worker: {}", err);
    return r;
  };
  server srv(cfg, metrics, std::move(opts));
  if (auto err = srv.bind()) {
    stop_control();
    return fail(1, *err);
  }

  admin::admin_hooks hooks;
  hooks.ready = [&srv] { return !srv.draining(); };
  hooks.ping = [&srv] { return srv.ping(); };
  hooks.config_json = [cfg, rs] {
    auto tree = rs->tree();
    return "{\"config\":" + config_to_json(*cfg) +
           ",\"space_tree\":" + (tree ? tree->to_json() : std::string("null")) + "}";
  };
  hooks.traces = &traces;
  admin::admin_server admin(metrics, hooks);
  if (auto err = admin.bind(cfg->admin_host, cfg->admin_port)) {
    stop_control();
    return fail(1, *err);
  }

  srv.set_admin_port(admin.port());
  srv.start();
  admin.start();
  log->info("devspaces-proxy {} ready: outbound {} inbound {} admin {}:{} space {} workers {}",
            DEVSPACES_VERSION, srv.outbound_port(), srv.inbound_port(), cfg->admin_host,
            admin.port(), cfg->space, cfg->workers);

  int sig = 0;
  ::sigwait(&signals, &sig);
  if (sig == SIGTERM) {
    // Drain: /readyz turns 503, both listeners stay open, inbound responses close their
    // connections, outbound is served as usual. Exit once no connection has been open for 1 s,
    // at the latest after --drain-timeout; a second SIGTERM or a SIGINT ends it now.
    log->info("SIGTERM: draining {} connection(s) for up to {} ms", srv.active_connections(),
              cfg->drain_timeout.count());
    srv.drain();
    std::thread second_signal([&] {
      int again = 0;
      ::sigwait(&signals, &again);
      srv.interrupt();
    });
    const auto end = srv.wait_quiet(std::chrono::seconds(1), cfg->drain_timeout);
    if (end != server::quiet_end::interrupted)
      ::pthread_kill(second_signal.native_handle(), SIGTERM);
    second_signal.join();
    if (end == server::quiet_end::interrupted)
      log->info("second signal: exiting now");
    else if (end == server::quiet_end::timeout)
      log->info("drain timeout: closing {} remaining connection(s)", srv.active_connections());
    else
      log->info("drained");
  } else {
    log->info("SIGINT: exiting now");
  }
  srv.stop();
  admin.stop();
  traces.close();
  stop_control();
  return 0;
}
