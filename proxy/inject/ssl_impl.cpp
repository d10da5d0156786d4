// The one translation unit that compiles Asio's SSL support (separate compilation), for the
// webhook's HTTPS server and its API server client.
#include <boost/asio/ssl/impl/src.hpp>
