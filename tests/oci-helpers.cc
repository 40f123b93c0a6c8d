#include "oci-helpers.hh"

#include <archive.h>
#include <archive_entry.h>

namespace grocker::test {

namespace {

char typeOf(archive_entry* e)
{
    if (archive_entry_hardlink(e)) return '1';
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
        return '0';
    case AE_IFLNK:
        return '2';
    case AE_IFCHR:
        return '3';
    case AE_IFBLK:
        return '4';
    case AE_IFDIR:
        return '5';
    case AE_IFIFO:
        return '6';
    default:
        return '?';
    }
}

} // namespace

std::vector<ReadEntry> readArchive(const std::string& bytes)
{
    std::vector<ReadEntry> out;
    archive* a = archive_read_new();
    archive_read_support_format_tar(a);
    EXPECT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK)
        << archive_error_string(a);
    archive_entry* e;
    int rc;
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        ReadEntry r;
        r.path = archive_entry_pathname(e);
        r.type = typeOf(e);
        r.mode = archive_entry_perm(e);
        r.uid = archive_entry_uid(e);
        r.gid = archive_entry_gid(e);
        r.mtime = archive_entry_mtime(e);
        r.size = archive_entry_size(e);
        if (auto s = archive_entry_symlink(e)) r.symlink = s;
        if (auto h = archive_entry_hardlink(e)) r.hardlink = h;
        if (auto u = archive_entry_uname(e)) r.uname = u;
        if (auto g = archive_entry_gname(e)) r.gname = g;
        r.devMajor = unsigned(archive_entry_rdevmajor(e));
        r.devMinor = unsigned(archive_entry_rdevminor(e));
        archive_entry_xattr_reset(e);
        const char* name;
        const void* value;
        size_t size;
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
            r.xattrs[name] = std::string(static_cast<const char*>(value), size);
        char buf[65536];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
            r.data.append(buf, size_t(n));
        EXPECT_GE(n, 0) << archive_error_string(a);
        out.push_back(std::move(r));
    }
    EXPECT_EQ(rc, ARCHIVE_EOF) << archive_error_string(a);
    archive_read_free(a);
    return out;
}

} // namespace grocker::test
