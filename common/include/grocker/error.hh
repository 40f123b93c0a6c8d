#pragma once
// Errors of every Grocker library: one base, a SysError that keeps errno, and context added on
// the way up ("while unpacking layer sha256:..."), as Nix does.

#include "grocker/strings.hh"

#include <cerrno>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace grocker {

class Error : public std::exception {
  public:
    explicit Error(std::string message) : message_(std::move(message)) {}
    template <typename... Args>
    explicit Error(Args&&... args) : message_(concat(std::forward<Args>(args)...))
    {
    }

    const char* what() const noexcept override { return message_.c_str(); }
    const std::string& message() const { return message_; }

    // Prefixes the message with what was being done: "while X: <message>".
    void addContext(const std::string& context) { message_ = context + ": " + message_; }

  private:
    std::string message_;
};

// An operating system call failed: the message ends with strerror(errno).
class SysError : public Error {
    struct Tag {};

  public:
    // The message is built from the arguments; errno is read first.
    template <typename First, typename... Args>
    requires(!std::is_integral_v<std::remove_cvref_t<First>> &&
             !std::is_same_v<std::remove_cvref_t<First>, Tag>) explicit SysError(First&& first,
                                                                                 Args&&... args)
        : SysError(errno, concat(std::forward<First>(first), std::forward<Args>(args)...))
    {
    }
    // The same with the errno saved by the caller: SysError(err, "unable to read '", path, "'").
    template <typename... Args>
    requires(sizeof...(Args) > 0) SysError(int err, Args&&... args)
        : SysError(Tag{}, err, concat(std::forward<Args>(args)...))
    {
    }

    int errNo() const { return errno_; }

  private:
    SysError(Tag, int err, const std::string& message);
    int errno_;
};

// Bad command line use: the program exits with 2 instead of 1.
class UsageError : public Error {
  public:
    using Error::Error;
};

} // namespace grocker
