#include "proxy/trace/record.hpp"
