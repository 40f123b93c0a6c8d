#pragma once
// The packaged runtimes, as the original Grocker's table: where a root image's base comes
// from, which Python makes the application's virtualenv, and the Debian packages the root
// (run) and compiler (build) images add. docs/configuration.md lists them.

#include <span>
#include <string>
#include <string_view>

namespace grocker {

struct Runtime {
    enum class Base {
        Mmdebstrap, // made from Debian's packages by mmdebstrap: no registry needed
        Registry,   // pulled from a registry
    };
    std::string_view name; // "bookworm/3.11": Debian suite / Python version
    Base base;
    std::string_view suite;  // the Debian suite of the base (what mmdebstrap bootstraps)
    std::string_view image;  // the base image's reference, for Base::Registry; else empty
    std::string_view python; // the interpreter that makes the application's virtualenv
    // The C library's version (MAJOR.MINOR) on every architecture of the base: the newest
    // manylinux wheels its Python takes. A stable Debian release keeps its glibc's.
    std::string_view glibc;
    // uwsgi: Debian's (`uwsgi --plugin <this>`), or empty when Debian's plugin does not match
    // the interpreter: then uwsgi is a wheel installed into the virtualenv.
    std::string_view uwsgiPlugin;
    std::span<const std::string_view> runDependencies;   // root image
    std::span<const std::string_view> buildDependencies; // compiler image, on top of the root
};

inline constexpr std::string_view defaultRuntime = "bookworm/3.11";

// The table, default first.
std::span<const Runtime> runtimes();

// The runtime called `name`, or nullptr.
const Runtime* lookupRuntime(std::string_view name);

// The runtime called `name`; a UsageError listing the known ones when there is none.
const Runtime& findRuntime(std::string_view name);

// "unknown runtime 'x' (known runtimes: bookworm/3.11, …)": the message of findRuntime.
std::string unknownRuntimeMessage(std::string_view name);

} // namespace grocker
