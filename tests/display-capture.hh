#pragma once
// The process's display (grocker/display.hh) writing to a memory file, for tests to read what
// it shows; put back to quiet on standard error when destroyed.

#include "grocker/display.hh"
#include "grocker/file.hh"

#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace grocker::test {

struct CapturedDisplay {
    AutoCloseFD fd{::memfd_create("display", MFD_CLOEXEC)};
    explicit CapturedDisplay(ProgressMode mode, bool verbose = false)
    {
        display().configure(mode, verbose, fd.get());
    }
    ~CapturedDisplay()
    {
        display().closeLog();
        display().configure(ProgressMode::Quiet, false, 2);
    }
    CapturedDisplay(const CapturedDisplay&) = delete;
    CapturedDisplay& operator=(const CapturedDisplay&) = delete;
    std::string text() const
    {
        std::string s(size_t(::lseek(fd.get(), 0, SEEK_END)), '\0');
        (void)!::pread(fd.get(), s.data(), s.size(), 0);
        return s;
    }
};

} // namespace grocker::test
