#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/options.hpp"
#include "init/app.hpp"
#include "init/config.hpp"

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace devspaces::init;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto env = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto parsed = parse_config(args, env);
  if (parsed.help) {
    config scratch;
    std::cout << devspaces::common::render_help(init_usage(), init_options(scratch));
    return exit_ok;
  }
  if (parsed.help_markdown) {
    config scratch;
    std::cout << devspaces::common::render_markdown(init_options(scratch));
    return exit_ok;
  }
  if (parsed.version) {
    std::cout << devspaces::common::version_text("devspaces-proxy-init", DEVSPACES_VERSION,
                                                 DEVSPACES_COMMIT, DEVSPACES_BUILD_TYPE)
              << "\n";
    return exit_ok;
  }
  if (parsed.error) {
    std::cerr << "devspaces-proxy-init: " << *parsed.error << "\n";
    return exit_usage;
  }
  system_access sys;
  sys.read_file = read_file;
  return run_command_line(parsed.cfg, sys, std::cout, std::cerr);
}
