#include "grocker/oci/error.hh"

#include <cstring>

namespace grocker {

SysError::SysError(int err, const std::string& message)
    : Error(message + ": " + std::strerror(err)), errno_(err)
{
}

} // namespace grocker
