#include "proxy/h2/stream_state.hpp"

namespace devspaces::proxy::h2 {

void stream_state::request_head(bool end_stream) {
  request = end_stream ? request_state::ended : request_state::body;
  step = exchange_step::route;
}

void stream_state::request_ended() {
  if (request == request_state::body) request = request_state::ended;
}

void stream_state::drop_request() {
  if (request != request_state::sent_end) request = request_state::dropped;
}

void stream_state::rewind_request() {
  if (request == request_state::sent_end) request = request_state::ended;
  upstream = upstream_state::none;
  step = exchange_step::upstream;
}

void stream_state::response_head(int code, bool end_stream) {
  status = code;
  response = end_stream ? response_state::ended : response_state::body;
  step = exchange_step::body;
}

void stream_state::response_ended() {
  if (response == response_state::body) response = response_state::ended;
}

bool stream_state::may_retry(std::uint32_t code, bool replayable) const {
  return code == refused_stream_code && replayable && response == response_state::none &&
         forwards_request() && client_open() && !decided();
}

exchange_outcome stream_state::upstream_closed() const {
  if (response == response_state::none)
    return exchange_outcome::answer(step, 502, "bad gateway: upstream reset the stream",
                                    "upstream_reset");
  if (response == response_state::body) return exchange_outcome::reset(step, "upstream_reset");
  return exchange_outcome::proceed();
}

const exchange_outcome& stream_state::client_closed() {
  if (!decided()) {
    outcome = response == response_state::sent_end
                  ? exchange_outcome::finished(exchange_end::keep_alive, status)
                  : exchange_outcome::reset(step, "client_reset");
  }
  step = exchange_step::end;
  return outcome;
}

}  // namespace devspaces::proxy::h2
