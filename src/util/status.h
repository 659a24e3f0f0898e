// Status and Result<T>: how anything that can fail reports it.
//
// A Status is a code plus a message meant for a user. Functions that touch the OS,
// SQLite or user input return one; callers must look at it ([[nodiscard]]).
// Result<T> holds either a value or a non-ok Status. Both are cheap to move and
// carry no hidden allocation when ok. Not thread-safe beyond normal value types.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace ns {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad user input: spec, params, flags
  kNotFound,
  kAlreadyExists,
  kIoError,
  kInternal,
  kCancelled,
  kUnavailable,  // e.g. database busy beyond the timeout
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Invalid(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status IoError(std::string msg) { return {StatusCode::kIoError, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status Cancelled(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  // An errno-based I/O error: "<what>: <strerror(err)>".
  static Status FromErrno(const std::string& what, int err);

  Status(StatusCode code, std::string msg) : code_(code), message_(std::move(msg)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define NS_RETURN_IF_ERROR(expr)      \
  do {                                \
    ::ns::Status _st = (expr);        \
    if (!_st.ok()) return _st;        \
  } while (0)

}  // namespace ns
