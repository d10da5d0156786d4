#include "init/rules.hpp"
