#include "proxy/h2/stream_state.hpp"

#include <string>

#include <gtest/gtest.h>

namespace devspaces::proxy::h2 {
namespace {

constexpr std::uint32_t cancel_code = 0x8;

// A stream routed and submitted upstream: the request head came (body or not), the upstream
// stream is open, the response head is awaited.
stream_state submitted(bool request_end) {
  stream_state s;
  s.request_head(request_end);
  s.step = exchange_step::response_head;
  s.upstream = upstream_state::open;
  if (request_end) s.request = request_state::sent_end;
  return s;
}

TEST(h2_stream_state, request_side_goes_head_body_ended_and_later_blocks_are_trailers) {
  stream_state s;
  EXPECT_EQ(s.step, exchange_step::request_head);
  EXPECT_FALSE(s.request_head_done());
  s.request_head(false);
  EXPECT_TRUE(s.request_head_done());
  EXPECT_EQ(s.request, request_state::body);
  EXPECT_EQ(s.step, exchange_step::route);
  s.request_ended();
  EXPECT_EQ(s.request, request_state::ended);
  s.request = request_state::sent_end;
  s.request_ended();  // no step back
  EXPECT_EQ(s.request, request_state::sent_end);
  s.drop_request();  // all of it went upstream: nothing to drop
  EXPECT_EQ(s.request, request_state::sent_end);
  EXPECT_TRUE(s.forwards_request());
}

TEST(h2_stream_state, a_dropped_request_stops_forwarding_and_stays_dropped) {
  stream_state s;
  s.request_head(false);
  s.drop_request();
  EXPECT_EQ(s.request, request_state::dropped);
  EXPECT_FALSE(s.forwards_request());
  s.request_ended();
  EXPECT_EQ(s.request, request_state::dropped);
}

TEST(h2_stream_state, response_side_and_completion) {
  auto s = submitted(true);
  EXPECT_FALSE(s.upstream_complete());
  s.response_head(200, false);
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.step, exchange_step::body);
  EXPECT_EQ(s.response, response_state::body);
  EXPECT_FALSE(s.upstream_complete());
  s.response_ended();
  EXPECT_EQ(s.response, response_state::ended);
  EXPECT_TRUE(s.upstream_complete());
  s.response = response_state::sent_end;
  s.response_ended();  // no step back
  EXPECT_EQ(s.response, response_state::sent_end);
  EXPECT_TRUE(s.upstream_complete());
}

TEST(h2_stream_state, refused_before_a_response_may_be_retried_once_the_rest_may_not) {
  auto s = submitted(true);
  EXPECT_TRUE(s.may_retry(refused_stream_code, true));
  EXPECT_FALSE(s.may_retry(refused_stream_code, false));  // the body sent is no longer at hand
  EXPECT_FALSE(s.may_retry(cancel_code, true));  // only REFUSED_STREAM says "not processed"
  auto dropped = submitted(false);
  dropped.drop_request();
  EXPECT_FALSE(dropped.may_retry(refused_stream_code, true));
  auto answered = submitted(true);
  answered.response_head(200, false);
  EXPECT_FALSE(answered.may_retry(refused_stream_code, true));
  auto gone = submitted(true);
  gone.client_closed();
  EXPECT_FALSE(gone.may_retry(refused_stream_code, true));
}

TEST(h2_stream_state, rewinding_sends_the_whole_request_again) {
  auto s = submitted(true);
  s.upstream = upstream_state::closed;
  s.rewind_request();
  EXPECT_EQ(s.request, request_state::ended);  // its end goes upstream again
  EXPECT_EQ(s.upstream, upstream_state::none);
  EXPECT_EQ(s.step, exchange_step::upstream);
  auto streaming = submitted(false);
  streaming.rewind_request();
  EXPECT_EQ(streaming.request, request_state::body);
}

TEST(h2_stream_state, upstream_closing_decides_answer_reset_or_nothing) {
  auto before_head = submitted(true);
  auto o = before_head.upstream_closed();
  EXPECT_FALSE(o.next);
  EXPECT_EQ(o.end, exchange_end::answer);
  EXPECT_EQ(o.status, 502);
  EXPECT_EQ(o.step, exchange_step::response_head);
  EXPECT_STREQ(o.error, "upstream_reset");

  auto mid_body = submitted(true);
  mid_body.response_head(200, false);
  o = mid_body.upstream_closed();
  EXPECT_EQ(o.end, exchange_end::reset);
  EXPECT_EQ(o.step, exchange_step::body);
  EXPECT_STREQ(o.error, "upstream_reset");

  auto complete = submitted(true);
  complete.response_head(200, true);
  EXPECT_TRUE(complete.upstream_closed().next);  // the response is whole: nothing to decide
}

TEST(h2_stream_state, client_close_finishes_or_resets_and_keeps_a_decided_outcome) {
  auto whole = submitted(true);
  whole.response_head(204, true);
  whole.response = response_state::sent_end;
  const auto& done = whole.client_closed();
  EXPECT_EQ(done.end, exchange_end::keep_alive);
  EXPECT_EQ(done.status, 204);
  EXPECT_EQ(done.error, nullptr);
  EXPECT_FALSE(whole.client_open());
  EXPECT_EQ(whole.step, exchange_step::end);

  auto cut = submitted(false);
  cut.response_head(200, false);
  const auto& reset = cut.client_closed();
  EXPECT_EQ(reset.end, exchange_end::reset);
  EXPECT_EQ(reset.step, exchange_step::body);
  EXPECT_STREQ(reset.error, "client_reset");

  auto answered = submitted(true);
  answered.outcome =
      exchange_outcome::answer(exchange_step::upstream, 504, "timed out", "upstream_timeout");
  EXPECT_TRUE(answered.answered());
  answered.response_head(504, false);
  const auto& kept = answered.client_closed();  // even when the answer was cut short
  EXPECT_EQ(kept.end, exchange_end::answer);
  EXPECT_STREQ(kept.error, "upstream_timeout");
}

}  // namespace
}  // namespace devspaces::proxy::h2
