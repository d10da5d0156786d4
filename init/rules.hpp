#pragma once

namespace devspaces::init {}  // namespace devspaces::init
