// The sandbox's part in grocker fsck and grocker purge: its unpacked layers (layers/<diff_id
// hex>, and layers/empty for scratch) and the run folders of steps (run/step-*).

#include "grocker/oci/store.hh"
#include "grocker/sandbox/rootfs.hh"

namespace grocker::sandbox {

namespace fs = std::filesystem;
using namespace grocker::oci;

namespace {

constexpr const char* layersDir = "layers";
constexpr const char* runDir = "run";

class SandboxPart : public StorePart {
  public:
    // The sandbox unpacks into tmp/ and renames the whole folder to layers/<diff_id hex>: a
    // layer under its name is complete, so only strays are found here.
    void check(PartCheck& c) override
    {
        c.counted(unpackedLayers, 0);
        for (auto& e : c.entries(c.store().root() / layersDir)) {
            auto name = e.path().filename().string();
            if (tempOwner(name)) continue; // a leftover, which the store's search judges
            std::error_code ec;
            bool dir = e.is_directory(ec) && !e.is_symlink(ec);
            if (ec) {
                c.issue(e.path(),
                        "unreadable entry of the unpacked layers' folder: " + ec.message());
                continue;
            }
            if ((Digest::valid("sha256:" + name) || name == "empty") && dir) {
                c.counted(unpackedLayers, name != "empty");
                continue;
            }
            c.issue(e.path(),
                    dir ? "not an unpacked layer: they are named by their diff_id"
                        : "not an unpacked layer: not a folder",
                    "removed", [&] { c.removeTreeAside(e.path()); });
        }
    }

    // Unpacked layers of no kept image.
    void sweep(PartSweep& s) override
    {
        for (auto& e : s.entries(s.store().root() / layersDir)) {
            auto name = e.path().filename().string();
            if (Digest::valid("sha256:" + name) && !s.kept().diffIds.count("sha256:" + name))
                s.dropTree(unpackedLayers, e.path());
        }
    }

    // Unpacking leaves nothing in layers/ but what it renames there whole; a run folder's name
    // carries no pid, so it is known dead only when no other grocker process has the store.
    void leftovers(const Store& store, LeftoverSearch& search) override
    {
        search.deadTemps(store.root() / layersDir);
        if (!search.alone) return;
        for (auto& e : search.entries(store.root() / runDir))
            search.add(e.path(), "leftover run folder of a step whose grocker process is gone",
                       StoreLeftover::Kind::Run);
    }
};

} // namespace

std::shared_ptr<StorePart> storePart()
{
    return std::make_shared<SandboxPart>();
}

} // namespace grocker::sandbox
