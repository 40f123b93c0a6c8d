#include "service-files.hh"

#include <algorithm>
#include <sstream>

namespace grocker::entrypoint {

namespace {

// nginx maps a location onto an alias by replacing the prefix: both end with '/' or neither
// does, else `/static../x` would reach the folder's parent ("off-by-slash").
std::string aliasFor(const std::string& prefix, std::string folder)
{
    while (folder.size() > 1 && folder.back() == '/')
        folder.pop_back();
    if (prefix.back() == '/' && folder != "/") folder += '/';
    return folder;
}

std::string quoteArg(const std::string& a)
{
    if (!a.empty() && a.find_first_of(" \t'\"\\$`") == std::string::npos) return a;
    std::string q = "'";
    for (char c : a)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

} // namespace

std::string nginxConfig(const WsgiService& service, const RunPaths& paths)
{
    std::ostringstream c;
    c << "# Written by grocker-entrypoint at start; changes are lost at the next start.\n"
         "daemon off;\n"
         "worker_processes auto;\n"
         "pid "
      << paths.dir << "/nginx.pid;\n"
      << "error_log stderr warn;\n"
         "\n"
         "events {\n"
         "    worker_connections 1024;\n"
         "}\n"
         "\n"
         "http {\n"
         "    include /etc/nginx/mime.types;\n"
         "    default_type application/octet-stream;\n"
         "    access_log /dev/stdout;\n"
         "    sendfile on;\n"
         "    tcp_nopush on;\n"
         "    server_tokens off;\n";
    static const char* const temps[][2] = {{"client_body_temp_path", "client-body"},
                                           {"proxy_temp_path", "proxy"},
                                           {"fastcgi_temp_path", "fastcgi"},
                                           {"uwsgi_temp_path", "uwsgi"},
                                           {"scgi_temp_path", "scgi"}};
    for (auto& [directive, folder] : temps)
        c << "    " << directive << " " << paths.nginxTemp() << "/" << folder << ";\n";
    c << "\n"
         "    server {\n"
         "        listen "
      << httpPort << ";\n"
      << "        server_name _;\n";
    for (auto& [prefix, folder] : service.statics)
        c << "\n"
             "        location "
          << prefix << " {\n"
          << "            alias " << aliasFor(prefix, folder) << ";\n"
          << "        }\n";
    if (!service.media.empty())
        c << "\n"
             "        # The application answers `X-Accel-Redirect: /media-internal/PATH` to send "
             "MEDIA/PATH.\n"
             "        location /media-internal/ {\n"
             "            internal;\n"
             "            alias "
          << aliasFor("/media-internal/", service.media) << ";\n"
          << "        }\n";
    c << "\n"
         "        location / {\n"
         "            include /etc/nginx/uwsgi_params;\n"
         "            uwsgi_pass unix:"
      << paths.socket() << ";\n"
      << "        }\n"
         "    }\n"
         "}\n";
    return c.str();
}

std::string uwsgiIni(const WsgiService& service, const std::string& venv, const RunPaths& paths,
                     const std::string& plugin)
{
    std::ostringstream c;
    c << "; Written by grocker-entrypoint at start; changes are lost at the next start.\n"
         "[uwsgi]\n"
         "strict = true\n";
    if (!plugin.empty()) c << "plugins = " << plugin << "\n";
    c << "master = true\n"
         "processes = "
      << service.processes << "\n"
      << "socket = " << paths.socket() << "\n"
      << "chmod-socket = 600\n"
         "vacuum = true\n"
         "virtualenv = "
      << venv << "\n"
      << "module = " << service.callable << "\n"
      << "need-app = true\n"
         "single-interpreter = true\n"
         "enable-threads = true\n"
         "; SIGTERM stops uwsgi (in uwsgi 2.0 it would otherwise reload).\n"
         "die-on-term = true\n"
         "buffer-size = 32768\n";
    return c.str();
}

std::string msmtpConfig(const Relay& relay, bool syslog)
{
    std::ostringstream c;
    c << "# Written by grocker-entrypoint at start from " << relay.origin
      << "; changes are lost at the next start.\n"
         "defaults\n"
         "syslog "
      << (syslog ? "LOG_MAIL" : "off") << "\n"
      << "\n"
         "account relay\n"
         "host "
      << relay.host << "\n"
      << "port " << relay.port << "\n"
      << "auth off\n"
         "tls off\n"
         "from %U@%H\n"
         "\n"
         "account default : relay\n";
    return c.str();
}

std::string crontabText(const Services& services, const EnvList& env,
                        std::vector<std::string>& warnings)
{
    std::ostringstream c;
    c << "# Written by grocker-entrypoint at start from /etc/grocker/services.json";
    if (!services.app.empty())
        c << " (" << services.app << (services.version.empty() ? "" : " " + services.version)
          << ")";
    c << "; changes are lost at the next start.\n";
    // Debian's cron keeps `NAME=VALUE` up to 1000 characters, strips one pair of matching
    // quotes and the spaces around the value (inside the quotes, only the leading ones are
    // kept), refuses an empty value, and has no way to write a line break.
    constexpr size_t maxEnv = 1000;
    for (auto& [key, value] : env) {
        if (value.find_first_of("\n\r") != std::string::npos) {
            warnings.push_back(concat(
                "the variable ", key,
                " holds a line break, which a crontab cannot carry: cron jobs will not have it"));
            continue;
        }
        std::string v = value;
        bool spaced = !v.empty() && (std::string(" \t").find(v.front()) != std::string::npos ||
                                     std::string(" \t").find(v.back()) != std::string::npos);
        bool quoted =
            v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front();
        // An empty value is a syntax error to Debian's cron ("bad minute"): "" is the empty string.
        if (v.empty() || spaced || quoted) {
            char q = v.find('"') == std::string::npos ? '"' : '\'';
            if (v.find(q) != std::string::npos) {
                warnings.push_back(concat("the variable ", key,
                                          " has spaces around it and both kinds of quotes, which a "
                                          "crontab cannot carry: cron jobs will not have it"));
                continue;
            }
            v = q + v + q;
        }
        if (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
            warnings.push_back(
                concat("the variable ", key,
                       " ends with spaces, which cron drops: cron jobs get it without them"));
        if (key.size() + 1 + v.size() > maxEnv) {
            warnings.push_back(
                concat("the variable ", key,
                       " is longer than cron's 1000 characters: cron jobs will not have it"));
            continue;
        }
        c << key << "=" << v << "\n";
    }
    for (auto& job : services.crontab)
        c << job << "\n";
    return c.str();
}

std::string helpText(const Services& services, const std::vector<std::string>& scripts)
{
    std::ostringstream h;
    h << "grocker-entrypoint: the entrypoint of ";
    if (services.app.empty())
        h << "this image";
    else
        h << services.app << (services.version.empty() ? "" : " " + services.version);
    h << ", made by grocker.\n"
         "\n"
         "Usage: grocker-entrypoint NAME [ARGUMENTS...]\n"
         "\n"
         "Services:\n";
    size_t width = 4;
    for (auto& s : services.services)
        width = std::max(width, s.name.size());
    auto row = [&](const std::string& name, const std::string& what) {
        h << "  " << name << std::string(width - name.size() + 2, ' ') << what << "\n";
    };
    for (auto& s : services.services) {
        if (auto* w = std::get_if<WsgiService>(&s.spec)) {
            std::string what = concat("nginx on port ", httpPort, ", uwsgi running ", w->callable);
            std::string statics;
            for (auto& [prefix, folder] : w->statics)
                statics.append(statics.empty() ? "" : ", ").append(prefix);
            if (!statics.empty()) what += "; static " + statics;
            if (!w->media.empty()) what += "; media " + w->media;
            row(s.name, what);
        } else {
            std::string cmd;
            for (auto& a : std::get<CommandService>(s.spec).argv)
                cmd.append(cmd.empty() ? "" : " ").append(quoteArg(a));
            row(s.name, cmd);
        }
    }
    auto jobs = services.crontab.size();
    row("cron", concat("the cron daemon with the application's crontab (", jobs,
                       jobs == 1 ? " job)" : " jobs)"));
    h << "\n"
         "Scripts in /scripts:\n";
    if (scripts.empty()) h << "  (none: mount a folder of scripts on /scripts)\n";
    for (auto& s : scripts)
        h << "  " << s << "\n";
    h << "\n"
         "Anything else is run as a command, with the application's environment.\n"
         "Configuration read at start: /config/env (KEY=VALUE lines), /config/smtp (the mail "
         "relay).\n";
    return h.str();
}

} // namespace grocker::entrypoint
