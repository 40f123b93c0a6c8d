#pragma once
// Errors of every Grocker library: one base, a SysError that keeps errno, and context added on
// the way up ("while unpacking layer sha256:..."), as Nix does.

#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <cerrno>
#include <utility>

namespace grocker {

// Concatenates its arguments with operator<< (std::format is not in Debian 12's g++).
template <typename... Args> std::string concat(Args&&... args)
{
    std::ostringstream s;
    (s << ... << std::forward<Args>(args));
    return s.str();
}

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
public:
    // The message is built from the arguments; errno is read first.
    template <typename First, typename... Args>
        requires(!std::is_integral_v<std::remove_cvref_t<First>>)
    explicit SysError(First&& first, Args&&... args)
        : SysError(errno, concat(std::forward<First>(first), std::forward<Args>(args)...))
    {
    }
    SysError(int err, const std::string& message);

    int errNo() const { return errno_; }

private:
    int errno_;
};

// Bad command line use: the program exits with 2 instead of 1.
class UsageError : public Error {
public:
    using Error::Error;
};

} // namespace grocker
