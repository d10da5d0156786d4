#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/inject/settings.hpp"
#include "proxy/routing/space_tree.hpp"

namespace devspaces::proxy::inject {

/// The answer to one POST /inject: an HTTP status and its body.
struct admission_answer {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string log_line;  ///< what happened, for the webhook's log
};

/// Answers an admission.k8s.io/v1 AdmissionReview (as the API server sends it) with the
/// AdmissionReview response carrying a base64 JSONPatch. A body that is not an AdmissionReview
/// for a Pod gets 400 with one line saying why. The space is the request's namespace; its
/// parents come from `tree`. A pod that is not injected is allowed without a patch.
admission_answer answer_admission(std::string_view body, const routing::space_tree& tree,
                                  const injection_settings& settings);

/// Standard base64 (RFC 4648 §4, with padding).
std::string base64_encode(std::string_view data);

}  // namespace devspaces::proxy::inject
