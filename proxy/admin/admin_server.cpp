// Placeholder: the admin server lands with the TCP core.
#include "proxy/metrics.hpp"
