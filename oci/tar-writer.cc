#include "grocker/oci/tar-writer.hh"

#include "grocker/error.hh"

#include <cstring>

namespace grocker::oci {

namespace {

constexpr size_t block = 512;

struct Header {
    char name[100];
    char mode[8];
    char uid[8];
    char gid[8];
    char size[12];
    char mtime[12];
    char chksum[8];
    char typeflag;
    char linkname[100];
    char magic[6];
    char version[2];
    char uname[32];
    char gname[32];
    char devmajor[8];
    char devminor[8];
    char prefix[155];
    char pad[12];
};
static_assert(sizeof(Header) == block);

// Fixed-width octal, NUL-terminated; false when it does not fit.
bool octal(char* field, size_t width, uint64_t value)
{
    size_t digits = width - 1;
    if (digits < 22 && value >> (3 * digits)) return false;
    field[digits] = '\0';
    for (size_t i = digits; i-- > 0;) {
        field[i] = char('0' + (value & 7));
        value >>= 3;
    }
    return true;
}

// A PAX record: "<len> <key>=<value>\n", where len counts itself.
void paxRecord(std::string& out, const std::string& key, const std::string& value)
{
    size_t body = 1 + key.size() + 1 + value.size() + 1;
    size_t len = body + 1;
    while (std::to_string(len).size() + body != len)
        len = std::to_string(len).size() + body;
    out += std::to_string(len) + " " + key + "=" + value + "\n";
}

void fillHeader(Header& h, const std::string& name, char type, uint32_t mode, uint64_t uid,
                uint64_t gid, uint64_t size, int64_t mtime, const std::string& link, uint32_t major,
                uint32_t minor)
{
    std::memset(&h, 0, sizeof h);
    std::memcpy(h.name, name.data(), std::min(name.size(), sizeof h.name));
    octal(h.mode, sizeof h.mode, mode & 07777);
    if (!octal(h.uid, sizeof h.uid, uid)) octal(h.uid, sizeof h.uid, 0);
    if (!octal(h.gid, sizeof h.gid, gid)) octal(h.gid, sizeof h.gid, 0);
    if (!octal(h.size, sizeof h.size, size)) octal(h.size, sizeof h.size, 0);
    octal(h.mtime, sizeof h.mtime, uint64_t(std::max<int64_t>(mtime, 0)));
    h.typeflag = type;
    std::memcpy(h.linkname, link.data(), std::min(link.size(), sizeof h.linkname));
    std::memcpy(h.magic, "ustar", 6);
    std::memcpy(h.version, "00", 2);
    if (type == TarEntry::CharDevice || type == TarEntry::BlockDevice) {
        octal(h.devmajor, sizeof h.devmajor, major);
        octal(h.devminor, sizeof h.devminor, minor);
    }
    std::memset(h.chksum, ' ', sizeof h.chksum);
    unsigned sum = 0;
    auto bytes = reinterpret_cast<const unsigned char*>(&h);
    for (size_t i = 0; i < block; i++)
        sum += bytes[i];
    octal(h.chksum, 7, sum);
    h.chksum[7] = ' ';
}

} // namespace

void TarWriter::put(const void* data, size_t len)
{
    out_.write(data, len);
    written_ += len;
}

void TarWriter::writeHeader(const TarEntry& e)
{
    if (remaining_)
        throw Error("tar writer: entry '", e.path,
                    "' started before the previous one was complete");
    if (e.path.empty()) throw Error("tar writer: an entry has an empty path");
    uint64_t size = e.type == TarEntry::Regular ? e.size : 0;

    std::string pax;
    if (e.path.size() > 100) paxRecord(pax, "path", e.path);
    if (e.linkTarget.size() > 100) paxRecord(pax, "linkpath", e.linkTarget);
    char probe[12];
    if (!octal(probe, 12, size)) paxRecord(pax, "size", std::to_string(size));
    if (!octal(probe, 8, e.uid)) paxRecord(pax, "uid", std::to_string(e.uid));
    if (!octal(probe, 8, e.gid)) paxRecord(pax, "gid", std::to_string(e.gid));
    for (auto& [k, v] : e.xattrs)
        paxRecord(pax, "SCHILY.xattr." + k, v);
    if (!pax.empty()) {
        // Records are already in a fixed order: the bytes depend on the entry only.
        Header h;
        std::string name = "PaxHeaders/" + e.path;
        while (!name.empty() && name.back() == '/')
            name.pop_back();
        fillHeader(h, name.substr(0, 100), 'x', 0644, 0, 0, pax.size(), 0, {}, 0, 0);
        put(&h, block);
        put(pax.data(), pax.size());
        static const char zeros[block] = {};
        if (pax.size() % block) put(zeros, block - pax.size() % block);
    }
    Header h;
    fillHeader(h, e.path, e.type, e.mode, e.uid, e.gid, size, e.mtime, e.linkTarget, e.devMajor,
               e.devMinor);
    put(&h, block);
    remaining_ = size;
    entrySize_ = size;
}

void TarWriter::writeData(const void* data, size_t len)
{
    if (len > remaining_)
        throw Error("tar writer: more data than the entry's size (", entrySize_, " bytes)");
    put(data, len);
    remaining_ -= len;
}

void TarWriter::endEntry()
{
    if (remaining_)
        throw Error("tar writer: entry ended ", remaining_, " bytes short of its size (",
                    entrySize_, "): the file changed while it was read; retry");
    static const char zeros[block] = {};
    if (entrySize_ % block) put(zeros, block - entrySize_ % block);
    entrySize_ = 0;
}

void TarWriter::addFile(TarEntry entry, std::string_view content)
{
    entry.type = TarEntry::Regular;
    entry.size = content.size();
    writeHeader(entry);
    writeData(content.data(), content.size());
    endEntry();
}

void TarWriter::finish()
{
    static const char zeros[2 * block] = {};
    put(zeros, sizeof zeros);
    out_.finish();
}

} // namespace grocker::oci
