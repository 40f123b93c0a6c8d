#pragma once
// The application's services as `grocker build` writes them into the runner image
// (/etc/grocker/services.json: services-format.hh, docs/services.md), read and checked at start.

#include "nginx-words.hh"
#include "services-format.hh"

#include <filesystem>

namespace grocker::entrypoint {

// Reads `path`; a missing file gives no services (an image not made by `grocker build`).
Services loadServices(const std::filesystem::path& path);

} // namespace grocker::entrypoint
