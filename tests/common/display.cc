// The display: progress modes, output lines made safe, plain lines, the failure tail, the
// live lines of a terminal, the summary and the log. (tests/integration/build/progress.sh
// drives a real terminal through tmux.)

#include "grocker/display.hh"

#include "display-capture.hh"
#include "grocker/error.hh"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace grocker;

namespace {

using Shown = test::CapturedDisplay;

// Runs a step whose command writes `output` (as a child process would) and ends with `status`.
void runStep(const std::string& name, const std::string& output, int status)
{
    int id = display().beginStep(name);
    auto w = display().outputPipe(id);
    pid_t pid = ::fork();
    if (pid == 0) {
        (void)!::write(w.get(), output.data(), output.size());
        ::_exit(status);
    }
    w.reset();
    display().waitForExit(pid);
    int st;
    ::waitpid(pid, &st, 0);
    display().endStep(id, status ? Display::Outcome::Failed : Display::Outcome::Done,
                      "exited with status " + std::to_string(status));
}

bool matches(const std::string& text, const std::string& re)
{
    return std::regex_search(text, std::regex(re));
}

std::string readAll(const std::filesystem::path& p)
{
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

} // namespace

TEST(Display, ProgressModes)
{
    ::unsetenv("GROCKER_PROGRESS");
    EXPECT_EQ(progressMode("plain", false), ProgressMode::Plain);
    EXPECT_EQ(progressMode("tty", false), ProgressMode::Tty);
    EXPECT_EQ(progressMode("quiet", false), ProgressMode::Quiet);
    EXPECT_EQ(progressMode("tty", true), ProgressMode::Quiet); // -q wins
    ::setenv("GROCKER_PROGRESS", "tty", 1);
    EXPECT_EQ(progressMode("", false), ProgressMode::Tty);
    EXPECT_EQ(progressMode("plain", false), ProgressMode::Plain); // the option wins
    ::setenv("GROCKER_PROGRESS", "fancy", 1);
    try {
        progressMode("", false);
        FAIL() << "no error";
    } catch (UsageError& e) {
        EXPECT_STREQ(e.what(), "GROCKER_PROGRESS is 'fancy': use auto, tty, plain or quiet");
    }
    ::unsetenv("GROCKER_PROGRESS");
    try {
        progressMode("loud", false);
        FAIL() << "no error";
    } catch (UsageError& e) {
        EXPECT_STREQ(e.what(), "--progress is 'loud': use auto, tty, plain or quiet");
    }
}

TEST(Display, Noise)
{
    EXPECT_TRUE(
        isNoise("debconf: delaying package configuration, since apt-utils is not installed"));
    EXPECT_TRUE(isNoise("(Reading database ... 45%"));
    EXPECT_TRUE(isNoise("   \u2501\u2501\u2501\u2501\u2501\u2501 1.2/3.4 MB 5.6 MB/s eta 0:00:01"));
    EXPECT_TRUE(isNoise("[notice] A new release of pip is available: 23.0.1 -> 24.0"));
    EXPECT_TRUE(
        isNoise("WARNING: Running pip as the 'root' user can result in broken permissions"));
    EXPECT_FALSE(isNoise("ERROR: Could not find a version that satisfies the requirement x"));
    EXPECT_FALSE(isNoise("Setting up python3 (3.11.2-1+b1) ..."));
    EXPECT_FALSE(isNoise("gcc -O2 -c x.c"));
}

TEST(Display, PrintableLines)
{
    EXPECT_EQ(printableLine("plain text"), "plain text");
    EXPECT_EQ(printableLine("  5%\r 50%\r100% done\r\n"), "100% done");
    EXPECT_EQ(printableLine("\033[1;31mred\033[0m and \033]0;title\007back"), "red and back");
    EXPECT_EQ(printableLine("\033[2J\033[Hcleared?"), "cleared?");
    EXPECT_EQ(printableLine("a\tb"), "a    b");
    EXPECT_EQ(printableLine("bell\007 and del\177"), "bell and del");
    EXPECT_EQ(printableLine("caf\xc3\xa9 \xe2\x9c\x94"), "caf\xc3\xa9 \xe2\x9c\x94");
    EXPECT_EQ(printableLine("c1 \xc2\x9b"
                            "31m csi"),
              "c1 31m csi"); // U+009B, a CSI to some
    EXPECT_EQ(printableLine("bad \xff\xc3("), "bad \uFFFD\uFFFD(");
    EXPECT_EQ(printableLine("surrogate \xed\xa0\x80"), "surrogate \uFFFD\uFFFD\uFFFD");
}

TEST(Display, PlainStepLines)
{
    Shown shown(ProgressMode::Plain);
    display().skippedStep("compile: example/hello", "cached");
    runStep("compile: grocker-greeting 1.0.0",
            "building\ndebconf: delaying package configuration\n\033[31mcolour\033[0m\nno newline",
            0);
    display().message("runner: grocker-hello 1.0.0: pushed");
    auto t = shown.text();
    const std::string at = "\\[ *[0-9]+\\.[0-9]s\\] ";
    EXPECT_TRUE(matches(t, "^" + at + "compile: example/hello: cached\n" + at +
                               "compile: grocker-greeting 1.0.0: running\n" + at +
                               "compile grocker-greeting \\| building\n" + at +
                               "compile grocker-greeting \\| colour\n" + at +
                               "compile grocker-greeting \\| no newline\n" + at +
                               "compile: grocker-greeting 1.0.0: done in [0-9.]+s\n" + at +
                               "runner: grocker-hello 1.0.0: pushed\n$"))
        << t;
}

TEST(Display, VerboseShowsNoise)
{
    Shown shown(ProgressMode::Plain, true);
    runStep("root: run dependencies", "debconf: delaying package configuration\n", 0);
    EXPECT_TRUE(matches(shown.text(), "root run \\| debconf: delaying")) << shown.text();
}

TEST(Display, FailureTailAndLog)
{
    auto log = std::filesystem::temp_directory_path() /
               ("grocker-display-" + std::to_string(::getpid()) + ".log");
    std::string output;
    for (int i = 1; i <= 50; i++)
        output += "line " + std::to_string(i) + "\n";
    output += "debconf: noise\n";
    for (auto mode : {ProgressMode::Plain, ProgressMode::Quiet, ProgressMode::Tty}) {
        std::filesystem::remove(log);
        Shown shown(mode);
        display().openLog(log, 1 << 20);
        runStep("compile: broken 1.0", output, 3);
        display().error("step 'compile: broken 1.0' failed");
        display().finish();
        // (On a terminal each line also clears what an earlier frame left on its row.)
        auto t = std::regex_replace(shown.text(), std::regex("\033\\[K"), "");
        // The last 40 lines (noise left out), in every mode, quiet included.
        EXPECT_TRUE(matches(t, "compile: broken 1.0: failed after [0-9.]+s: exited with status "
                               "3; its last 40 lines:\n  \\| line 11\n(  \\| line [0-9]+\n){38}"
                               "  \\| line 50\n  the build's whole log: " +
                                   log.string() + " \\(grocker log\\)\n"))
            << t;
        EXPECT_FALSE(matches(t, "\\| line 10\n  \\| line 11\n  \\| line 12")) << t;
        EXPECT_TRUE(matches(t, "grocker: error: step 'compile: broken 1.0' failed\n")) << t;
        // The log has every line, noise too, and the error.
        auto l = readAll(log);
        EXPECT_TRUE(matches(l, "\\] compile broken \\| line 1\n")) << l;
        EXPECT_TRUE(matches(l, "\\] compile broken \\| debconf: noise\n")) << l;
        EXPECT_TRUE(matches(l, "\\] grocker: error: step 'compile: broken 1.0' failed\n$")) << l;
    }
    std::filesystem::remove(log);
}

TEST(Display, LogIsBounded)
{
    auto log = std::filesystem::temp_directory_path() /
               ("grocker-display-bound-" + std::to_string(::getpid()) + ".log");
    std::filesystem::remove(log);
    Shown shown(ProgressMode::Quiet);
    display().openLog(log, 4096);
    for (int i = 0; i < 1000; i++)
        display().message("a message of some length, number " + std::to_string(i));
    display().closeLog();
    auto l = readAll(log);
    EXPECT_LE(l.size(), 4096u);
    EXPECT_TRUE(matches(l, "grocker: the log is cut here: it reached 4.1 kB\n$")) << l;
    std::filesystem::remove(log);
}

TEST(Display, TerminalLiveLinesCollapse)
{
    Shown shown(ProgressMode::Tty);
    int id = display().beginStep("runner: app 1.0");
    auto w = display().outputPipe(id);
    pid_t pid = ::fork();
    if (pid == 0) {
        for (int i = 1; i <= 6; i++) {
            auto l = "output " + std::to_string(i) + "\n";
            (void)!::write(w.get(), l.data(), l.size());
        }
        ::usleep(300000); // a redraw or two while it runs
        ::_exit(0);
    }
    w.reset();
    display().waitForExit(pid);
    ::waitpid(pid, nullptr, 0);
    auto whileRunning = shown.text();
    display().endStep(id, Display::Outcome::Done);
    display().finish();
    auto t = shown.text();
    // While it ran: its line with the time, its last 4 output lines under it.
    EXPECT_TRUE(matches(whileRunning, "\u25cf runner: app 1.0  [0-9.]+s\033\\[K\n  \u2502 output "
                                      "3\033\\[K\n  \u2502 output 4\033\\[K\n  \u2502 output "
                                      "5\033\\[K\n  \u2502 output 6\033\\[K\n"))
        << whileRunning;
    // Then: erased, one line says it is done, and nothing is drawn below it.
    auto last = t.substr(whileRunning.size());
    EXPECT_TRUE(matches(last, "^\033\\[5A\r\u2714 runner: app 1.0  [0-9.]+s\033\\[K\n\033\\[J$"))
        << last;
}

TEST(Display, Summary)
{
    Shown shown(ProgressMode::Plain);
    display().skippedStep("compile: example/hello", "cached");
    display().skippedStep("runner: dependencies of app", "from the build cache");
    runStep("runner: app 1.0", "", 0);
    int t = display().beginTransfer("layer sha256:abc", 2000);
    display().endTransfer(t, "pushed layer sha256:abc", 2000, true);
    auto before = shown.text().size();
    display().summary({"image: sha256:0123"});
    auto s = shown.text().substr(before);
    EXPECT_TRUE(matches(s, "^steps: 1 ran, 2 cached, in [0-9.]+s\n"
                           "  cached             compile: example/hello\n"
                           "  reused             runner: dependencies of app \\(from the build "
                           "cache\\)\n"
                           "  ran      +[0-9.]+s  runner: app 1.0\n"
                           "data: pulled 0 B, pushed 2.0 kB\n"
                           "image: sha256:0123\n$"))
        << s;
}
