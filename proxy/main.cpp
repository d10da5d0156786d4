#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "proxy/config.hpp"

int main(int argc, char** argv) {
  using namespace devspaces::proxy;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto env = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  auto parsed = parse_proxy_config(args, env);
  if (parsed.help) {
    std::fputs(proxy_help().c_str(), stdout);
    return 0;
  }
  if (parsed.version) {
    std::printf("devspaces-proxy %s\n", DEVSPACES_VERSION);
    return 0;
  }
  if (parsed.error) {
    std::fprintf(stderr, "devspaces-proxy: %s\n", parsed.error->c_str());
    return 2;
  }
  return 0;
}
