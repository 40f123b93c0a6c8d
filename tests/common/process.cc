#include "grocker/process.hh"

#include <csignal>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

using namespace grocker;

TEST(Process, ExitStatus)
{
    auto ok = runProgram({"true"}, "");
    EXPECT_TRUE(ok.succeeded());
    EXPECT_EQ(ok.exitCode(), 0);
    EXPECT_FALSE(ok.signal());

    auto three = runProgram({"sh", "-c", "exit 3"}, "");
    EXPECT_FALSE(three.succeeded());
    EXPECT_EQ(three.exitCode(), 3);
    EXPECT_FALSE(three.signal());
}

TEST(Process, InputToOutputWithArgumentsAsGiven)
{
    EXPECT_EQ(runProgram({"cat"}, "hello\nworld").output, "hello\nworld");
    // No shell: the words reach the program as they are.
    EXPECT_EQ(runProgram({"printf", "[%s]", "a b", "$HOME", "'q'"}, "").output,
              "[a b][$HOME]['q']");
}

TEST(Process, StandardErrorMergedOrNot)
{
    EXPECT_EQ(runProgram({"sh", "-c", "echo out; echo err >&2"}, "").output, "out\nerr\n");
    ProcessOptions own;
    own.mergeStderr = false;
    EXPECT_EQ(runProgram({"sh", "-c", "echo out; echo err >&2"}, "", own).output, "out\n");
}

TEST(Process, MissingProgram)
{
    try {
        runProgram({"grocker-test-no-such-program"}, "input");
        FAIL() << "no error";
    } catch (SpawnError& e) {
        EXPECT_STREQ(e.what(),
                     "unable to run 'grocker-test-no-such-program': No such file or directory");
        EXPECT_EQ(e.errNo(), ENOENT);
    }
    EXPECT_THROW(runProgram({}, ""), Error);
}

TEST(Process, LargeInputAndOutputTogether)
{
    // More than a pipe holds, both ways at once: cat writes back before it has read it all.
    std::string input(8 << 20, 'x');
    for (size_t i = 0; i < input.size(); i += 4096)
        input[i] = char('a' + i / 4096 % 26);
    ProcessOptions big;
    big.maxOutput = input.size();
    EXPECT_EQ(runProgram({"cat"}, input, big).output, input);
}

TEST(Process, OutputOverTheLimitStopsTheProgram)
{
    ProcessOptions small;
    small.maxOutput = 100000;
    try {
        runProgram({"yes"}, "", small);
        FAIL() << "no error";
    } catch (Error& e) {
        EXPECT_STREQ(e.what(), "'yes' wrote more than 100000 bytes of output; stopped");
    }
    EXPECT_EQ(runProgram({"head", "-c", "100000", "/dev/zero"}, "", small).output.size(), 100000u);
}

TEST(Process, ProgramThatReadsNothingOfItsInput)
{
    // Its end of the pipe closes while input remains: no SIGPIPE here, and its status stands.
    auto r = runProgram({"sh", "-c", "echo bye; exit 4"}, std::string(4 << 20, 'x'));
    EXPECT_EQ(r.output, "bye\n");
    EXPECT_EQ(r.exitCode(), 4);
}

TEST(Process, KilledBySignal)
{
    auto r = runProgram({"sh", "-c", "echo partial; kill -KILL $$"}, "");
    EXPECT_EQ(r.output, "partial\n");
    EXPECT_FALSE(r.succeeded());
    EXPECT_EQ(r.signal(), SIGKILL);
    EXPECT_EQ(r.exitCode(), 128 + SIGKILL);
}

TEST(Process, OnlyTheStandardDescriptorsAreInherited)
{
    // A descriptor of this process without O_CLOEXEC, as code outside Grocker may open.
    int leaky = ::dup(1);
    ASSERT_GE(leaky, 3);
    auto r = runProgram({"sh", "-c", "ls /proc/$$/fd"}, "");
    ::close(leaky);
    EXPECT_EQ(r.output, "0\n1\n2\n");
}
