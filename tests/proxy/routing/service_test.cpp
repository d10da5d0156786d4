#include "proxy/routing/service.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/test_support.hpp"

namespace devspaces::proxy::routing {
namespace {

namespace asio = boost::asio;

struct temp_dir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("routing-service-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  temp_dir() { std::filesystem::create_directories(path); }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, std::string_view text) const {
    auto p = path / name;
    auto tmp = p;
    tmp += ".tmp";
    std::ofstream(tmp, std::ios::trunc) << text;
    std::filesystem::rename(tmp, p);
    return p.string();
  }
};

TEST(RoutingService, StartupErrors) {
  temp_dir dir;
  proxy_metrics metrics;
  auto cfg = std::make_shared<config>();
  cfg->spaces_file = dir.write("spaces.json", "{not json");
  auto bad_tree = routing_service::create(cfg, metrics);
  EXPECT_FALSE(bad_tree.service);
  EXPECT_NE(bad_tree.error.find("--spaces-file"), std::string::npos) << bad_tree.error;

  cfg->spaces_file.clear();
  cfg->resolver = "hosts:" + (dir.path / "missing").string();
  auto bad_resolver = routing_service::create(cfg, metrics);
  EXPECT_FALSE(bad_resolver.service);
  EXPECT_NE(bad_resolver.error.find("--resolver"), std::string::npos) << bad_resolver.error;

  cfg->resolver = "dns";
  cfg->parent_spaces = {"a", "b", "c"};
  EXPECT_FALSE(routing_service::create(cfg, metrics).service);
}

TEST(RoutingService, RoutesWithHostsFileAndReloadsTree) {
  temp_dir dir;
  proxy_metrics metrics;
  auto cfg = std::make_shared<config>();
  cfg->space = "azureuser";
  cfg->spaces_file =
      dir.write("spaces.json", R"({"spaces": {"azureuser": {"parent": "default"}}})");
  cfg->resolver = "hosts:" + dir.write("hosts",
                                       "10.0.0.7 serviceb.default.svc.cluster.local\n"
                                       "10.0.0.9 serviceb.team.svc.cluster.local\n");
  // The loops outlive the service and its routers (their timers live on them).
  asio::io_context main_io;
  asio::io_context worker_io;
  auto created = routing_service::create(cfg, metrics);
  ASSERT_TRUE(created.service) << created.error;
  auto& svc = *created.service;
  svc.start_watcher(main_io.get_executor());
  std::string error;
  auto r = svc.make_router(worker_io.get_executor(), &error);
  ASSERT_TRUE(r) << error;

  auto route = [&] {
    std::optional<route_result> out;
    std::vector<header_ref> headers{{"azds-route-as", "azureuser"}};
    asio::co_spawn(worker_io, r->route_outbound("serviceb", headers),
                   [&](std::exception_ptr e, route_result rr) {
                     if (e) std::rethrow_exception(e);
                     out = std::move(rr);
                   });
    worker_io.restart();
    worker_io.run();
    return out.value_or(route_result{});
  };
  auto first = route();
  EXPECT_EQ(first.decision->decision, decision_kind::parent);
  EXPECT_EQ(first.target->to_string(), "10.0.0.7");

  dir.write("spaces.json", R"({"spaces": {"azureuser": {"parent": "team"}}})");
  ASSERT_TRUE(test::wait_for([&] {
    main_io.restart();
    main_io.run_for(std::chrono::milliseconds(50));
    return svc.tree()->chain("azureuser").back() == "team";
  }));
  auto second = route();
  EXPECT_EQ(second.decision->decision, decision_kind::parent);
  EXPECT_EQ(second.target->to_string(), "10.0.0.9");
  EXPECT_EQ(metrics.config_reloads(true).Value(), 1);
}

}  // namespace
}  // namespace devspaces::proxy::routing
