#pragma once
// Errors of the runner's entrypoint. It is a static program of its own, linked with nothing of
// the grocker libraries, so it has its own small copy of their Error/SysError pair.

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace grocker::entrypoint {

template <typename... Args> std::string concat(Args&&... args)
{
    std::ostringstream s;
    (s << ... << std::forward<Args>(args));
    return s.str();
}

// One line a person can act on: what failed, on what, and what to do.
class Error : public std::runtime_error {
  public:
    template <typename... Args>
    explicit Error(Args&&... args) : std::runtime_error(concat(std::forward<Args>(args)...))
    {
    }
};

// A system call failed: the message ends with strerror of the errno saved when it was built.
class SysError : public Error {
  public:
    template <typename... Args>
    explicit SysError(int err, Args&&... args)
        : Error(std::forward<Args>(args)..., ": ", std::strerror(err)), errNo(err)
    {
    }
    int errNo;
};

} // namespace grocker::entrypoint
