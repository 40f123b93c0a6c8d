#include "grocker/error.hh"

#include <cstring>

namespace grocker {

SysError::SysError(Tag, int err, const std::string& message)
    : Error(message + ": " + std::strerror(err)), errno_(err)
{
}

} // namespace grocker
