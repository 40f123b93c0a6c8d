// grocker-entrypoint: PID 1 of a runner image. Starts the cron instance, a service of the
// application, a script from /scripts or any command (see docs/services.md).

#include "config-files.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/strings.hh"
#include "log.hh"
#include "service-files.hh"
#include "services.hh"
#include "supervisor.hh"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

namespace grocker::entrypoint {

namespace {

namespace fs = std::filesystem;

const std::string servicesFile(servicesPath);
const std::string configDir = "/config";
const std::string scriptsDir = "/scripts";
const std::string userName = "grocker";

// The file's text, or nothing when it does not exist.
std::optional<std::string> readIfExists(const std::string& path)
{
    try {
        return readFile(path);
    } catch (SysError& e) {
        if (e.errNo() == ENOENT) return std::nullopt;
        throw;
    }
}

std::string getenvOr(const char* name, const std::string& fallback)
{
    const char* v = std::getenv(name);
    return v ? v : fallback;
}

std::vector<std::string> listScripts()
{
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(scriptsDir, ec))
        if (e.is_regular_file(ec)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// Who runs the services and commands, and what they get.
struct Context {
    Services services;
    bool root = false;
    std::optional<Account> user; // switched to: the entrypoint started as root
    std::vector<gid_t> groups;
    std::string home; // of whoever runs the processes
    std::vector<std::string> env;
};

// /config/env, put in the entrypoint's environment so that everything started gets it.
void applyConfigEnv(Log& log)
{
    auto path = configDir + "/env";
    std::vector<std::string> warnings;
    auto text = readConfigFile(path, warnings);
    for (auto& w : warnings)
        log.warning(w);
    if (!text) return;
    for (auto& [key, value] : parseEnvFile(*text, path))
        ::setenv(key.c_str(), value.c_str(), 1);
}

Context makeContext(Services services)
{
    Context c;
    c.services = std::move(services);
    c.root = ::geteuid() == 0;
    auto passwd = readIfExists("/etc/passwd").value_or("");
    if (c.root) {
        c.user = findAccount(passwd, userName);
        if (!c.user)
            throw Error(
                "user '", userName,
                "' is not in /etc/passwd: the services and commands run as that user; "
                "this image was not made by grocker build, or its root image lacks the user");
        c.groups = accountGroups(readIfExists("/etc/group").value_or(""), *c.user);
        c.home = c.user->home;
    } else {
        auto self = findAccount(passwd, ::geteuid());
        c.home = getenvOr("HOME", self ? self->home : "/");
    }
    // The processes' environment: ours (the image's, then /config/env), with the virtualenv first
    // in PATH.
    std::vector<std::string> env;
    for (char** e = environ; *e; e++)
        env.emplace_back(*e);
    auto set = [&](const std::string& key, const std::string& value) {
        std::erase_if(env, [&](const std::string& e) { return e.starts_with(key + "="); });
        env.push_back(key + "=" + value);
    };
    auto path = getenvOr("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (!c.services.venv.empty()) {
        auto bin = c.services.venv + "/bin";
        if ((":" + path + ":").find(":" + bin + ":") == std::string::npos) path = bin + ":" + path;
        set("VIRTUAL_ENV", c.services.venv);
    }
    set("PATH", path);
    if (c.user) {
        set("HOME", c.user->home);
        set("USER", c.user->name);
        set("LOGNAME", c.user->name);
    }
    c.env = std::move(env);
    return c;
}

// msmtp's configuration, so that `sendmail` from cron and the application reaches the relay:
// /config/smtp, else $SMTP_HOST, else the container's default gateway (the host, with
// Docker's and podman's bridges).
void setUpMail(const Context& c, Log& log, bool syslog, bool quiet)
{
    std::optional<Relay> relay;
    std::vector<std::string> warnings;
    auto smtp = readConfigFile(configDir + "/smtp", warnings);
    for (auto& w : warnings)
        log.warning(w);
    if (auto text = smtp) {
        relay = parseSmtpFile(*text, configDir + "/smtp");
    } else if (auto host = getenvOr("SMTP_HOST", ""); !host.empty()) {
        relay = parseRelay(host, "SMTP_HOST");
    } else if (auto routes = readIfExists("/proc/net/route")) {
        if (auto gateway = defaultGateway(*routes))
            relay = Relay{*gateway, 25, "the default gateway"};
    }
    if (!relay) {
        // A command run with no network has no use for the warning.
        if (!quiet)
            log.warning(concat("no mail relay: no ", configDir,
                               "/smtp, no SMTP_HOST and no default route, so mail "
                               "will not be sent; write the relay's HOST[:PORT] in ",
                               configDir, "/smtp"));
        return;
    }
    // As root, for every user (/etc/msmtprc); else the user's own file.
    auto path = c.root ? std::string("/etc/msmtprc") : c.home + "/.msmtprc";
    try {
        writeFileAtomic(path, msmtpConfig(*relay, syslog), c.root ? 0644 : 0600);
    } catch (Error& e) {
        log.warning(concat(e.what(), ": mail will not reach the relay ", relay->str()));
        return;
    }
    log.info(concat("mail goes to the relay ", relay->str(), " (from ", relay->origin, ")"));
}

// /tmp/grocker, owned by the user that runs the services.
RunPaths makeRunDir(const Context& c)
{
    RunPaths paths;
    for (auto& dir : {paths.dir, paths.nginxTemp()}) {
        if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
            throw SysError(errno, "unable to create '", dir, "'");
        struct stat st;
        if (::lstat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
            throw Error("'", dir, "' is not a folder: remove it, the entrypoint needs that folder");
        if (c.user && ::chown(dir.c_str(), c.user->uid, c.user->gid) < 0)
            throw SysError(errno, "unable to give '", dir, "' to user ", c.user->name);
    }
    return paths;
}

ProcessSpec processSpec(const Context& c, std::string name, std::vector<std::string> argv,
                        bool captureOutput)
{
    ProcessSpec p;
    p.name = std::move(name);
    p.argv = std::move(argv);
    p.env = c.env;
    p.user = c.user;
    p.groups = c.groups;
    p.captureOutput = captureOutput;
    return p;
}

int runWsgi(const Context& c, const Service& service, Log& log, Supervisor& sup)
{
    auto& w = std::get<WsgiService>(service.spec);
    auto paths = makeRunDir(c);
    std::error_code ec;
    if (!fs::is_directory(c.services.venv, ec))
        throw Error("the virtualenv '", c.services.venv, "' named in ", servicesFile,
                    " is not in the image: the runner image is incomplete; build it again");
    for (auto& [prefix, folder] : w.statics)
        if (!fs::is_directory(folder, ec))
            log.warning(concat("the static folder '", folder, "' of ", prefix,
                               " is missing: nginx will answer 404 there"));
    if (!w.media.empty() && !fs::is_directory(w.media, ec))
        log.warning(concat("the media folder '", w.media, "' is missing: mount a volume there"));
    writeFileAtomic(paths.nginxConf(), nginxConfig(w, paths), 0644);
    writeFileAtomic(paths.uwsgiIni(), uwsgiIni(w, c.services.venv, paths, c.services.uwsgiPlugin),
                    0644);
    ::unlink(paths.socket().c_str()); // left by an earlier start of this container

    sup.start(processSpec(c, "uwsgi", {"uwsgi", "--ini", paths.uwsgiIni()}, true));
    try {
        sup.start(
            processSpec(c, "nginx", {"nginx", "-e", "stderr", "-c", paths.nginxConf()}, true));
    } catch (StartError&) {
        sup.signalAll(SIGTERM);
        sup.wait();
        throw;
    }
    log.info(concat("service ", service.name, ": nginx on port ", httpPort,
                    " in front of uwsgi running ", w.callable));
    return sup.wait();
}

int runCron(const Context& c, Log& log, Supervisor& sup)
{
    auto paths = makeRunDir(c);
    // Cron gives its jobs almost no environment: the crontab carries ours, minus what is per
    // process.
    std::vector<std::string> warnings;
    static const std::vector<std::string> perProcess = {
        "HOME", "HOSTNAME", "PWD",     "OLDPWD", "SHLVL", "_",
        "TERM", "USER",     "LOGNAME", "SHELL",  "MAIL",  "VIRTUAL_ENV"};
    EnvList env;
    for (auto& e : c.env) {
        auto eq = e.find('=');
        auto key = e.substr(0, eq);
        if (std::find(perProcess.begin(), perProcess.end(), key) == perProcess.end() &&
            isIdentifier(key))
            env.emplace_back(key, e.substr(eq + 1));
    }
    writeFileAtomic(paths.crontab(), crontabText(c.services, env, warnings), 0644);
    for (auto& w : warnings)
        log.warning(w);
    ProcessSpec install =
        processSpec(c, "crontab", {"crontab", "-u", c.user->name, paths.crontab()}, false);
    install.user.reset(); // crontab -u needs root
    std::string output;
    if (int status = sup.runToEnd(install, output); status != 0)
        throw Error("unable to install the crontab of user ", c.user->name,
                    " (crontab exited with status ", status,
                    "): ", output.empty() ? "it said nothing" : output);
    auto jobs = c.services.crontab.size();
    log.info(concat("installed the crontab of user ", c.user->name, " (", jobs,
                    jobs == 1 ? " job)" : " jobs)"));
    // -L 7: log the jobs started, ended, and failed.
    ProcessSpec cron = processSpec(c, "cron", {"cron", "-f", "-L", "7"}, true);
    cron.user.reset(); // cron switches to the crontab's user itself
    sup.start(cron);
    return sup.wait();
}

int run(const std::vector<std::string>& args, Log& log, Supervisor& sup)
{
    auto services = loadServices(servicesFile);
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << helpText(services, listScripts()) << std::flush;
        return 0;
    }
    if (args[0] == "--version") {
        std::cout << "grocker-entrypoint " << GROCKER_VERSION << "\n" << std::flush;
        return 0;
    }
    auto& name = args[0];
    const Service* service = services.find(name);
    bool cron = name == "cron";
    // A command's output is its own: the entrypoint only speaks up when something fails.
    log.setQuiet(!cron && !service);

    applyConfigEnv(log);
    auto c = makeContext(std::move(services));
    // Debian's cron logs only to syslog: with no /dev/log mounted, listen there ourselves.
    std::optional<SyslogRelay> syslogRelay;
    if (cron) {
        if (!c.root)
            throw Error("the cron instance must start as root (cron runs the jobs as user ",
                        userName,
                        " itself): start the container as root, as with docker run --user root");
        std::error_code ec;
        if (!log.toSyslog() && !fs::exists("/dev/log", ec)) {
            try {
                syslogRelay.emplace("/dev/log");
                sup.watch(syslogRelay->fd(), [&] { syslogRelay->drain(); });
            } catch (Error& e) {
                log.warning(concat(e.what(), ": what cron logs will be lost"));
            }
        }
    }
    setUpMail(c, log, log.toSyslog() || syslogRelay, !cron && !service);

    if (cron) return runCron(c, log, sup);
    if (service) {
        if (std::holds_alternative<WsgiService>(service->spec))
            return runWsgi(c, *service, log, sup);
        auto& cmd = std::get<CommandService>(service->spec);
        std::vector<std::string> argv = cmd.argv;
        argv.insert(argv.end(), args.begin() + 1, args.end());
        sup.start(processSpec(c, service->name, argv, true));
        log.info(concat("service ", service->name, ": ", argv[0], " started"));
        return sup.wait();
    }
    // A script of /scripts by its name, else any command.
    std::vector<std::string> argv = args;
    std::error_code ec;
    if (name.find('/') == std::string::npos && fs::is_regular_file(scriptsDir + "/" + name, ec))
        argv[0] = scriptsDir + "/" + name;
    auto p = processSpec(c, argv[0], argv, false);
    p.terminal = true;
    sup.start(p);
    return sup.wait();
}

} // namespace

} // namespace grocker::entrypoint

int main(int argc, char** argv)
{
    using namespace grocker::entrypoint;
    Log log;
    std::optional<Supervisor> sup;
    try {
        sup.emplace(log);
        return run(std::vector<std::string>(argv + 1, argv + argc), log, *sup);
    } catch (StartError& e) {
        log.error(e.what());
        return e.status;
    } catch (ConfigError& e) {
        for (auto& p : e.problems)
            log.error(p);
        return 1;
    } catch (std::exception& e) {
        log.error(e.what());
        return 1;
    }
}
