#pragma once
// The shell commands that build steps run (apt, useradd, the wheel installer), built word by
// word: no command line is pasted together by hand, so no package name, repository line or
// path can end a command or start another.

#include <string>
#include <vector>

namespace grocker::build {

// A word of a command. Written in the code (a program, an option, a fixed path): quoted only
// when it needs it. data(): from the user or a file (a package name, a key, a line), always
// quoted. glob(): a fixed pattern the shell expands, of the characters of paths and '*' only.
struct Word {
    enum class Kind { Code, Data, Glob };
    Word(const char* t) : kind(Kind::Code), text(t) {}
    Word(std::string t) : kind(Kind::Code), text(std::move(t)) {}
    Word(Kind k, std::string t) : kind(k), text(std::move(t)) {}
    Kind kind;
    std::string text;
};
inline Word data(std::string text)
{
    return Word(Word::Kind::Data, std::move(text));
}
Word glob(std::string pattern); // throws std::logic_error on a character outside paths and '*'

// Commands run one after the other while each succeeds (joined by "&&", for sh -e).
class ShellScript {
  public:
    // One command, its words quoted as their kinds say.
    ShellScript& run(const std::vector<Word>& words);
    // The same with its standard output written to `file` (">file").
    ShellScript& runTo(const std::vector<Word>& words, const Word& file);
    // Each word as data: a list of package names or wheel paths.
    static std::vector<Word> data(const std::vector<std::string>& words);
    ShellScript& then(const ShellScript& more);

    bool empty() const { return commands_.empty(); }
    std::string text() const;
    // {"/bin/sh", "-ec", text()}: the argv of a step.
    std::vector<std::string> argv() const;

  private:
    std::vector<std::string> commands_;
};

// The word as sh reads it back: as is when it is made of [A-Za-z0-9@%+=:,./_-] only, else in
// single quotes (Python's shlex.quote).
std::string quoteIfNeeded(const std::string& word);

} // namespace grocker::build
