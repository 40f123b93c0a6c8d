#pragma once
// The files the entrypoint writes before starting a service: nginx's and uwsgi's
// configurations, msmtp's, the crontab, and the help text. Pure text, checked by golden files.

#include "config-files.hh"
#include "services.hh"

#include <string>
#include <vector>

namespace grocker::entrypoint {

// Where the generated files, the uwsgi socket and nginx's temporary folders live: a fresh
// folder under /tmp, writable by the service's user even on a read-only root filesystem.
struct RunPaths {
    std::string dir = "/tmp/grocker";
    std::string nginxConf() const { return dir + "/nginx.conf"; }
    std::string uwsgiIni() const { return dir + "/uwsgi.ini"; }
    std::string socket() const { return dir + "/uwsgi.sock"; }
    std::string nginxTemp() const { return dir + "/nginx"; }
    std::string crontab() const { return dir + "/crontab"; }
};

constexpr int httpPort = 8080;

// nginx in the foreground on port 8080: the statics, the media behind /media-internal/, the
// rest to uwsgi; errors to stderr and the access log to stdout, which the entrypoint relays.
std::string nginxConfig(const WsgiService& service, const RunPaths& paths);

// uwsgi with its master, its Python plugin (none when empty: Python built in) and the
// application from the virtualenv.
std::string uwsgiIni(const WsgiService& service, const std::string& venv, const RunPaths& paths,
                     const std::string& plugin = "python3");

// msmtp's configuration: everything sent with sendmail goes to the relay, unauthenticated.
std::string msmtpConfig(const Relay& relay, bool syslog);

// The crontab of the `cron` instance: `env` as variable lines (cron gives jobs almost no
// environment), then the jobs. Variables cron cannot carry are left out, each with a warning.
std::string crontabText(const Services& services, const EnvList& env,
                        std::vector<std::string>& warnings);

// What `grocker-entrypoint` with no argument prints: the services, cron, the scripts.
std::string helpText(const Services& services, const std::vector<std::string>& scripts);

} // namespace grocker::entrypoint
