#include "proxy/logging.hpp"

#include <chrono>
#include <mutex>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace devspaces::proxy {

namespace {

/// One JSON object a line: {"ts":"...Z","level":"info","logger":"conn","msg":"..."}.
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(msg.time);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(msg.time - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    auto level = spdlog::level::to_string_view(msg.level);
    const std::string_view name(msg.logger_name.data(), msg.logger_name.size());
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (name == "access" && payload.size() >= 2 && payload.front() == '{' &&
        payload.back() == '}') {
      // An access line is already a JSON object of fields: merged into the line, so every
      // field is a key of its own.
      fmt::format_to(std::back_inserter(dest),
                     R"({{"ts":"{:%Y-%m-%dT%H:%M:%S}.{:06}Z","level":"{}","logger":"access",)"
                     R"("msg":"exchange",{})",
                     tm, micros, std::string_view(level.data(), level.size()), payload.substr(1));
      dest.push_back('\n');
      return;
    }
    fmt::format_to(
        std::back_inserter(dest),
        R"({{"ts":"{:%Y-%m-%dT%H:%M:%S}.{:06}Z","level":"{}","logger":"{}","msg":"{}"}})", tm,
        micros, std::string_view(level.data(), level.size()),
        json_escape(std::string_view(msg.logger_name.data(), msg.logger_name.size())),
        json_escape(std::string_view(msg.payload.data(), msg.payload.size())));
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

struct log_setup {
  std::mutex mutex;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  spdlog::level::level_enum level = spdlog::level::info;
  bool json = false;
};

log_setup& setup() {
  static log_setup s;
  return s;
}

std::unique_ptr<spdlog::formatter> make_formatter(bool json) {
  if (json) return std::make_unique<json_formatter>();
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%fZ %l %n: %v",
                                                     spdlog::pattern_time_type::utc);
}

}  // namespace

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out.push_back(ch);
    }
  }
  return out;
}

void setup_logging(std::string_view level, std::string_view format) {
  auto& s = setup();
  std::lock_guard lock(s.mutex);
  s.level = spdlog::level::from_str(std::string(level));
  if (level == "warn") s.level = spdlog::level::warn;
  s.json = format == "json";
  s.sink->set_formatter(make_formatter(s.json));
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) { l->set_level(s.level); });
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  auto& s = setup();
  std::lock_guard lock(s.mutex);
  if (auto existing = spdlog::get(name)) return existing;
  static std::once_flag formatter_once;
  std::call_once(formatter_once, [&] { s.sink->set_formatter(make_formatter(s.json)); });
  auto l = std::make_shared<spdlog::logger>(name, s.sink);
  l->set_level(s.level);
  l->flush_on(spdlog::level::warn);
  spdlog::register_logger(l);
  return l;
}

}  // namespace devspaces::proxy
