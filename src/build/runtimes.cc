#include "runtimes.hh"

#include "grocker/error.hh"

namespace grocker {

namespace {

// Packages common to every runtime. Why each is there:
//   nginx/uwsgi: the `wsgi` services; cron: the `cron` instance; msmtp-mta: a sendmail that
//   relays to the host without a daemon; ca-certificates, tzdata: what apps expect of a
//   system; libpq5, libjpeg62-turbo, zlib1g, libxml2, libxslt1.1, libffi, libssl: the
//   libraries of the usual C extensions (psycopg2, Pillow, lxml, cffi, cryptography).
// uwsgi-core rather than `uwsgi`: the latter only adds SysV init scripts, which a container
// never runs. Bookworm's nginx-light is a transitional package for `nginx`, which is now the
// light flavour; bullseye's nginx-light is the real thing.

constexpr std::string_view bookwormDebianRun[] = {
    "python3",   "python3-venv",    "nginx",   "uwsgi-core", "uwsgi-plugin-python3", "cron",
    "msmtp-mta", "ca-certificates", "tzdata",  "libpq5",     "libjpeg62-turbo",      "zlib1g",
    "libxml2",   "libxslt1.1",      "libffi8", "libssl3",
};

constexpr std::string_view bookwormDebianBuild[] = {
    "build-essential", "python3-dev",  "python3-pip", "python3-wheel", "python3-setuptools",
    "pkg-config",      "gettext",      "libpq-dev",   "libjpeg-dev",   "zlib1g-dev",
    "libxml2-dev",     "libxslt1-dev", "libffi-dev",  "libssl-dev",
};

// python:3.12-slim-bookworm has its own Python in /usr/local (with headers and pip): Debian's
// python3 packages and uwsgi plugin (built for 3.11) would be a second, wrong interpreter.
constexpr std::string_view bookwormImageRun[] = {
    "nginx",           "cron",   "msmtp-mta", "ca-certificates", "tzdata",  "libpq5",
    "libjpeg62-turbo", "zlib1g", "libxml2",   "libxslt1.1",      "libffi8", "libssl3",
};

constexpr std::string_view bookwormImageBuild[] = {
    "build-essential", "pkg-config",  "gettext",      "libpq-dev",  "libjpeg-dev",
    "zlib1g-dev",      "libxml2-dev", "libxslt1-dev", "libffi-dev", "libssl-dev",
};

constexpr std::string_view bullseyeDebianRun[] = {
    "python3",   "python3-venv",    "nginx-light", "uwsgi-core", "uwsgi-plugin-python3", "cron",
    "msmtp-mta", "ca-certificates", "tzdata",      "libpq5",     "libjpeg62-turbo",      "zlib1g",
    "libxml2",   "libxslt1.1",      "libffi7",     "libssl1.1",
};

constexpr std::string_view bullseyeDebianBuild[] = {
    "build-essential", "python3-dev",  "python3-pip", "python3-wheel", "python3-setuptools",
    "pkg-config",      "gettext",      "libpq-dev",   "libjpeg-dev",   "zlib1g-dev",
    "libxml2-dev",     "libxslt1-dev", "libffi-dev",  "libssl-dev",
};

constexpr Runtime table[] = {
    {
        .name = "bookworm/3.11",
        .base = Runtime::Base::Mmdebstrap,
        .suite = "bookworm",
        .image = "",
        .python = "/usr/bin/python3",
        .glibc = "2.36",
        .uwsgiPlugin = "python3",
        .runDependencies = bookwormDebianRun,
        .buildDependencies = bookwormDebianBuild,
    },
    {
        .name = "bookworm/3.12",
        .base = Runtime::Base::Registry,
        .suite = "bookworm",
        .image = "docker.io/library/python:3.12-slim-bookworm",
        .python = "/usr/local/bin/python3.12",
        .glibc = "2.36",
        .uwsgiPlugin = "",
        .runDependencies = bookwormImageRun,
        .buildDependencies = bookwormImageBuild,
    },
    {
        .name = "bullseye/3.9",
        .base = Runtime::Base::Mmdebstrap,
        .suite = "bullseye",
        .image = "",
        .python = "/usr/bin/python3",
        .glibc = "2.31",
        .uwsgiPlugin = "python3",
        .runDependencies = bullseyeDebianRun,
        .buildDependencies = bullseyeDebianBuild,
    },
};

static_assert(table[0].name == defaultRuntime, "the default runtime comes first");

} // namespace

std::span<const Runtime> runtimes()
{
    return table;
}

const Runtime* lookupRuntime(std::string_view name)
{
    for (const auto& r : table)
        if (r.name == name) return &r;
    return nullptr;
}

std::string unknownRuntimeMessage(std::string_view name)
{
    std::string known;
    for (const auto& r : table)
        known += concat(known.empty() ? "" : ", ", r.name);
    return concat("unknown runtime '", name.substr(0, 100), "' (known runtimes: ", known, ")");
}

const Runtime& findRuntime(std::string_view name)
{
    if (auto* r = lookupRuntime(name)) return *r;
    throw UsageError(unknownRuntimeMessage(name));
}

} // namespace grocker
