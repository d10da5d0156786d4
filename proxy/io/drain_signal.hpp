#pragma once

#include <functional>
#include <utility>

namespace devspaces::proxy::io {

/// One worker's "drain started" signal. Connections subscribe a callback for as long as they
/// could be affected (an idle keep-alive connection that should close); fire() calls every
/// subscribed callback once. Used from the worker's thread only (fire() is posted there), so
/// it needs no lock; a connection never polls a flag.
class drain_signal {
 public:
  /// A registration; unsubscribes when reset or destroyed. Not copyable or movable (the signal
  /// links to it).
  class subscription {
   public:
    subscription() = default;
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription() { reset(); }

    /// Stops the callback from being called.
    void reset() {
      if (owner_ == nullptr) return;
      if (prev_ != nullptr) prev_->next_ = next_;
      if (next_ != nullptr) next_->prev_ = prev_;
      if (owner_->head_ == this) owner_->head_ = next_;
      owner_ = nullptr;
      prev_ = next_ = nullptr;
      fn_ = nullptr;
    }

   private:
    friend class drain_signal;
    drain_signal* owner_ = nullptr;
    subscription* prev_ = nullptr;
    subscription* next_ = nullptr;
    std::function<void()> fn_;
  };

  drain_signal() = default;
  drain_signal(const drain_signal&) = delete;
  drain_signal& operator=(const drain_signal&) = delete;
  ~drain_signal() {
    while (head_ != nullptr) head_->reset();
  }

  /// True once fire() ran.
  bool fired() const { return fired_; }

  /// Calls `fn` when the signal fires (not at all when it has fired already: check fired()).
  void subscribe(subscription& sub, std::function<void()> fn) {
    sub.reset();
    if (fired_) return;
    sub.owner_ = this;
    sub.fn_ = std::move(fn);
    sub.next_ = head_;
    if (head_ != nullptr) head_->prev_ = &sub;
    head_ = &sub;
  }

  /// Fires once: every subscription is removed and its callback called (a callback may reset
  /// or destroy other subscriptions).
  void fire() {
    if (fired_) return;
    fired_ = true;
    while (head_ != nullptr) {
      auto* s = head_;
      auto fn = std::move(s->fn_);
      s->reset();
      if (fn) fn();
    }
  }

 private:
  subscription* head_ = nullptr;
  bool fired_ = false;
};

}  // namespace devspaces::proxy::io
