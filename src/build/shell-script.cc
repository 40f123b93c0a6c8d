#include "shell-script.hh"

#include "grocker/strings.hh"

#include <stdexcept>

namespace grocker::build {

namespace {

bool plain(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
}

std::string emit(const Word& w)
{
    switch (w.kind) {
    case Word::Kind::Code:
        return quoteIfNeeded(w.text);
    case Word::Kind::Data:
        return shellQuote(w.text);
    case Word::Kind::Glob:
        return w.text;
    }
    return shellQuote(w.text);
}

std::string line(const std::vector<Word>& words)
{
    if (words.empty()) throw std::logic_error("a shell command with no word");
    std::string s;
    for (auto& w : words) {
        if (!s.empty()) s += ' ';
        s += emit(w);
    }
    return s;
}

} // namespace

std::string quoteIfNeeded(const std::string& word)
{
    if (word.empty()) return "''";
    for (char c : word)
        if (!plain(c)) return shellQuote(word);
    return word;
}

Word glob(std::string pattern)
{
    for (char c : pattern)
        if (!plain(c) && c != '*')
            throw std::logic_error("glob pattern '" + pattern +
                                   "' holds a character sh would read");
    if (pattern.empty()) throw std::logic_error("an empty glob pattern");
    return Word(Word::Kind::Glob, std::move(pattern));
}

ShellScript& ShellScript::run(const std::vector<Word>& words)
{
    commands_.push_back(line(words));
    return *this;
}

ShellScript& ShellScript::runTo(const std::vector<Word>& words, const Word& file)
{
    commands_.push_back(line(words) + " >" + emit(file));
    return *this;
}

std::vector<Word> ShellScript::data(const std::vector<std::string>& words)
{
    std::vector<Word> out;
    for (auto& w : words)
        out.push_back(build::data(w));
    return out;
}

ShellScript& ShellScript::then(const ShellScript& more)
{
    commands_.insert(commands_.end(), more.commands_.begin(), more.commands_.end());
    return *this;
}

std::string ShellScript::text() const
{
    return join(commands_, " && ");
}

std::vector<std::string> ShellScript::argv() const
{
    return {"/bin/sh", "-ec", text()};
}

} // namespace grocker::build
