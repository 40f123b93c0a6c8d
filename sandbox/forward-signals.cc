#include "forward-signals.hh"

#include <csignal>
#include <initializer_list>

namespace grocker::sandbox {

namespace {

volatile pid_t forwardTo[maxRunning] = {};
size_t running = 0;
struct sigaction oldInt, oldTerm;

void forwardSignal(int sig)
{
    for (auto& p : forwardTo)
        if (p > 0) ::kill(p, sig);
}

} // namespace

size_t runningSandboxes()
{
    return running;
}

void forwardSignalsTo(pid_t pid)
{
    for (auto& p : forwardTo)
        if (p == 0) {
            p = pid;
            break;
        }
    if (running++ > 0) return;
    struct sigaction sa = {};
    sa.sa_handler = forwardSignal;
    ::sigaction(SIGINT, &sa, &oldInt);
    ::sigaction(SIGTERM, &sa, &oldTerm);
}

void stopForwarding(pid_t pid)
{
    for (auto& p : forwardTo)
        if (p == pid) p = 0;
    if (--running > 0) return;
    ::sigaction(SIGINT, &oldInt, nullptr);
    ::sigaction(SIGTERM, &oldTerm, nullptr);
}

void forgetForwarding()
{
    for (auto& p : forwardTo)
        p = 0;
}

void forwardInitSignalsTo(pid_t cmd)
{
    forwardTo[0] = cmd; // the parent's other sandboxes were cleared at the start
    struct sigaction sa = {};
    sa.sa_handler = forwardSignal;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2})
        ::sigaction(sig, &sa, nullptr);
}

} // namespace grocker::sandbox
