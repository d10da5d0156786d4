#pragma once

#include <string_view>

namespace devspaces::proxy::admin {

/// The `/ui` page: one self-contained HTML document (inline CSS and script, no external
/// assets) that follows `/traces` live through Server-Sent Events and shows one row per
/// exchange (time, direction, method, path, status, duration, route decision), filters, a
/// detail pane with the whole record (route decision, tried names), and pause/resume.
std::string_view ui_page();

}  // namespace devspaces::proxy::admin
