#include "services.hh"

#include "grocker/file.hh"

namespace grocker::entrypoint {

Services loadServices(const std::filesystem::path& path)
{
    std::string text;
    try {
        text = readFile(path);
    } catch (SysError& e) {
        if (e.errNo() == ENOENT) return {};
        throw;
    }
    return parseServices(text, path.string());
}

} // namespace grocker::entrypoint
