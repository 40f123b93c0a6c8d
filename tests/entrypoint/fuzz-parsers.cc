// libFuzzer target for every parser of the entrypoint that reads outside input: services.json,
// /config/env, /config/smtp, /proc/net/route, /etc/passwd and /etc/group, syslog datagrams.
// The first byte picks the parser. Built with -Dfuzz=true and clang.

#include "config-files.hh"
#include "log.hh"
#include "services.hh"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace grocker::entrypoint;
using grocker::Error;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0) return 0;
    std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 7) {
        case 0:
            parseServices(text, "fuzz");
            break;
        case 1:
            parseEnvFile(text, "fuzz");
            break;
        case 2:
            parseSmtpFile(text, "fuzz");
            break;
        case 3:
            parseRelay(text, "fuzz");
            break;
        case 4:
            defaultGateway(text);
            break;
        case 5:
            if (auto a = findAccount(text, "grocker")) accountGroups(text, *a);
            findAccount(text, uid_t(0));
            break;
        case 6:
            syslogText(text);
            break;
        }
    } catch (Error&) {
        // Refusing bad input with a message is the expected outcome.
    }
    return 0;
}
