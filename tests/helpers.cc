#include "helpers.hh"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grocker::test {

namespace fs = std::filesystem;

TempDir::TempDir()
{
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/grocker-test-XXXXXX";
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
}

TempDir::~TempDir()
{
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    fs::remove_all(path_, ec);
}

void writeTestFile(const fs::path& path, const std::string& content, unsigned mode)
{
    fs::create_directories(path.parent_path());
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << content;
        if (!f) throw std::runtime_error("cannot write " + path.string());
    }
    ::chmod(path.c_str(), mode);
}

RunResult run(const std::vector<std::string>& argv, const std::string& input)
{
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        throw std::runtime_error("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        std::vector<char*> args;
        for (auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (!input.empty()) (void)!write(in[1], input.data(), input.size());
    close(in[1]);
    RunResult r{0, {}, {}};
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open = 2;
    char buf[65536];
    while (open > 0) {
        if (poll(fds, 2, -1) < 0) continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open--;
            } else
                (i == 0 ? r.out : r.err).append(buf, size_t(n));
        }
    }
    int status;
    waitpid(pid, &status, 0);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

void inChildProcesses(int n, const std::function<void(int k)>& work)
{
    std::vector<pid_t> kids;
    for (int k = 0; k < n; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            ADD_FAILURE() << "fork: " << std::strerror(errno);
            break;
        }
        if (pid == 0) {
            // Never back into the test runner: only the parent reports.
            int rc = 0;
            try {
                work(k);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "child %d: %s\n", k, e.what());
                rc = 1;
            } catch (...) {
                rc = 1;
            }
            _exit(rc);
        }
        kids.push_back(pid);
    }
    for (size_t k = 0; k < kids.size(); k++) {
        int status = 0;
        if (waitpid(kids[k], &status, 0) != kids[k]) {
            ADD_FAILURE() << "waitpid of child " << k << ": " << std::strerror(errno);
            continue;
        }
        if (WIFSIGNALED(status))
            ADD_FAILURE() << "child " << k << " was killed by signal " << WTERMSIG(status);
        else if (WEXITSTATUS(status) != 0)
            ADD_FAILURE() << "child " << k << " exited with status " << WEXITSTATUS(status)
                          << " (what it threw is on stderr)";
    }
}

fs::path testData()
{
    const char* d = std::getenv("GROCKER_TEST_DATA");
    return d ? fs::path(d) : fs::path("tests");
}

} // namespace grocker::test
