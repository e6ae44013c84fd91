// Captures what the lb code logs through spdlog's default logger, for tests
// that check log lines. While a LogCapture lives, the default logger is one
// that writes to the previous logger's sinks (so the output still shows)
// and to an in-memory sink; the destructor puts the previous logger back.
//
// spdlog's free functions use the default logger without a lock: create the
// capture before any thread that logs and destroy it after they have
// stopped (declare it before the objects that own those threads).
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lbtest {

class LogCapture {
 public:
  LogCapture() : prev_(spdlog::default_logger()), sink_(std::make_shared<Sink>()) {
    std::vector<spdlog::sink_ptr> sinks = prev_->sinks();
    sinks.push_back(sink_);
    logger_ = std::make_shared<spdlog::logger>(prev_->name(), sinks.begin(), sinks.end());
    logger_->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger_);
  }
  ~LogCapture() { spdlog::set_default_logger(prev_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // Every message so far, one per line, as "level: message".
  std::string text() const { return sink_->text(); }
  bool contains(const std::string& needle) const { return text().find(needle) != std::string::npos; }

 private:
  class Sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::string text() {
      std::lock_guard lk(mutex_);
      return text_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& m) override {
      auto level = spdlog::level::to_string_view(m.level);
      text_.append(level.data(), level.size()).append(": ");
      text_.append(m.payload.data(), m.payload.size()).append("\n");
    }
    void flush_() override {}

   private:
    std::string text_;
  };

  std::shared_ptr<spdlog::logger> prev_;
  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace lbtest
