// pull, push, login and logout, and the docker:// transport for the other image commands: the
// command line over the registry library.

#include "build/signing.hh"
#include "commands.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/registry/registry.hh"
#include "grocker/strings.hh"

#include <iostream>
#include <termios.h>
#include <unistd.h>

namespace grocker {

namespace fs = std::filesystem;
using namespace grocker::oci;

registry::Options registryOptions(const GlobalOptions& g)
{
    registry::Options o;
    o.client.auth.authFile = g.authfile;
    o.client.tlsVerify = g.tlsVerify;
    o.client.certDir = g.certDir;
    o.quiet = g.quiet;
    o.platform = wantedPlatform(g);
    return o;
}

Platform wantedPlatform(const GlobalOptions& g)
{
    return g.platform.empty() ? Platform::host() : Platform::parse(g.platform);
}

void addPlatformOption(CLI::App* app, GlobalOptions& global)
{
    app->add_option("--platform", global.platform,
                    "Of an image index, the image for this platform (OS/ARCH[/VARIANT]; default "
                    "this machine's)");
}

void addAllOption(CLI::App* app, GlobalOptions& global)
{
    auto* all = app->add_flag("--all", global.allPlatforms,
                              "Of an image index, the index itself and every image it lists (its "
                              "digest kept), with their attachments");
    if (auto* platform = app->get_option_no_throw("--platform")) all->excludes(platform);
}

// "docker://host/repo:tag" or "host/repo:tag"; a bad one is misuse.
Reference dockerReference(const std::string& text)
{
    std::string ref = text.starts_with("docker://") ? text.substr(9) : text;
    try {
        return Reference::parse(ref);
    } catch (UsageError&) {
        throw;
    } catch (Error& e) {
        throw UsageError(e.message());
    }
}

namespace {

std::string readPassword(bool fromStdin)
{
    std::string password;
    if (fromStdin || !::isatty(0)) {
        password = readFd(0);
        // One trailing newline is the end of the line, not of the password.
        if (password.ends_with("\n")) password.pop_back();
        if (password.ends_with("\r")) password.pop_back();
        return password;
    }
    std::cerr << "Password: " << std::flush;
    termios old{};
    bool restore = ::tcgetattr(0, &old) == 0;
    if (restore) {
        termios quiet = old;
        quiet.c_lflag &= ~tcflag_t(ECHO);
        ::tcsetattr(0, TCSAFLUSH, &quiet);
    }
    std::getline(std::cin, password);
    if (restore) ::tcsetattr(0, TCSAFLUSH, &old);
    std::cerr << "\n";
    return password;
}

struct LoginOptions {
    std::string host, username;
    bool passwordStdin = false;
};

int runLogin(const GlobalOptions& g, const LoginOptions& o)
{
    std::string user = o.username;
    if (user.empty()) {
        if (o.passwordStdin || !::isatty(0))
            throw UsageError("login: give the username with -u USER");
        std::cerr << "Username: " << std::flush;
        std::getline(std::cin, user);
    }
    auto password = readPassword(o.passwordStdin);
    auto file = registry::login(o.host, user, password, registryOptions(g));
    if (!g.quiet)
        std::cerr << "Login Succeeded: credentials for " << o.host << " saved in '" << file.string()
                  << "'\n";
    return 0;
}

int runLogout(const GlobalOptions& g, const std::string& host)
{
    auto file = registry::logout(host, registryOptions(g));
    if (!g.quiet)
        std::cerr << "Removed the credentials for " << host << " from '" << file.string() << "'\n";
    return 0;
}

int runPull(const GlobalOptions& g, const std::string& refText, const std::string& destText)
{
    auto ref = dockerReference(refText);
    auto dest = ImageRef::parse(destText);
    if (dest.kind == ImageRef::Kind::Scratch)
        throw UsageError("scratch cannot be a destination: name an image location");
    Store store = openStore(g);
    std::cout << copyWithAttachments(store, ImageRef{ImageRef::Kind::Docker, {}, ref.str()}, dest,
                                     g)
                     .str()
              << "\n";
    return 0;
}

int runPush(const GlobalOptions& g, const std::string& srcText, const std::string& refText)
{
    auto src = ImageRef::parse(srcText);
    auto ref = dockerReference(refText);
    if (src.kind == ImageRef::Kind::Scratch) throw UsageError("scratch is not an image to push");
    Store store = openStore(g);
    std::cout
        << copyWithAttachments(store, src, ImageRef{ImageRef::Kind::Docker, {}, ref.str()}, g).str()
        << "\n";
    return 0;
}

} // namespace

Image loadAnyImage(Store& store, const ImageRef& src, const GlobalOptions& g, bool layers)
{
    if (src.kind != ImageRef::Kind::Docker) return loadImage(store, src, wantedPlatform(g));
    registry::Session session(registryOptions(g));
    return session.pull(store, dockerReference(src.ref), layers);
}

std::string registryOf(const ImageRef& location)
{
    return location.kind == ImageRef::Kind::Docker ? dockerReference(location.ref).domain
                                                   : std::string();
}

void fetchAnyLayers(Store& store, const ImageRef& src, const std::vector<Descriptor>& layers,
                    const GlobalOptions& g)
{
    if (src.kind != ImageRef::Kind::Docker || layers.empty()) return;
    registry::Session session(registryOptions(g));
    session.fetchLayers(store, dockerReference(src.ref), layers);
}

namespace {
// A pulled image's blobs are hard-linked from the store into an oci: folder before saveImage,
// which then finds them there and copies nothing: a pull writes each byte once, as skopeo
// does, not twice (the copies and their fsyncs made pulls disk-bound). The links share the
// store's read-only files (mode 0444). On another filesystem, or any failure, saveImage copies.
void linkBlobsFromStore(const Store& store, const Image& image, const fs::path& dir)
{
    std::error_code ec;
    fs::create_directories(dir / "blobs" / "sha256", ec);
    if (ec) return;
    std::vector<Descriptor> blobs{image.manifestDescriptor, image.manifest.config};
    blobs.insert(blobs.end(), image.manifest.layers.begin(), image.manifest.layers.end());
    for (auto& b : blobs) {
        auto to = dir / "blobs" / b.digest.algorithm() / b.digest.hex();
        if (fs::exists(to, ec)) continue;
        if (::link(store.blobPath(b.digest).c_str(), to.c_str()) < 0 && errno == EXDEV) return;
    }
}
} // namespace

void saveAnyImage(Store& store, const Image& image, const ImageRef& dest, const GlobalOptions& g,
                  bool pulled, const std::vector<Descriptor>& referrers)
{
    if (pulled && dest.kind == ImageRef::Kind::Oci) linkBlobsFromStore(store, image, dest.path);
    if (dest.kind != ImageRef::Kind::Docker) return saveImage(store, image, dest, referrers);
    registry::Session session(registryOptions(g));
    auto ref = dockerReference(dest.ref);
    session.push(store, image, ref);
    session.attach(store, referrers, ref);
}

std::vector<Descriptor> loadAttachments(Store& store, const ImageRef& src, const GlobalOptions& g,
                                        const Digest& subject)
{
    if (src.kind != ImageRef::Kind::Docker) return loadLayoutReferrers(store, src, subject, "");
    registry::Session session(registryOptions(g));
    auto ref = dockerReference(src.ref);
    auto found = session.referrers(ref, subject, "");
    for (auto& d : found)
        session.fetchReferrer(store, ref, d);
    return found;
}

ImageRef imageWithAttachments(const std::string& text, const std::string& what)
{
    auto src = ImageRef::parse(text);
    if (src.kind != ImageRef::Kind::Oci && src.kind != ImageRef::Kind::OciArchive &&
        src.kind != ImageRef::Kind::Docker)
        throw UsageError(src.str(), ": ", what,
                         " are kept with images in registries (docker://), oci: layouts and "
                         "oci-archive: files");
    return src;
}

size_t saveWithAttachments(Store& store, const std::optional<Descriptor>& index,
                           const std::vector<Image>& images, const std::vector<ImageRef>& from,
                           const std::optional<ImageRef>& indexFrom, const ImageRef& dest,
                           const GlobalOptions& g)
{
    // Each subject and where it was read; the index's last.
    std::vector<std::pair<Digest, ImageRef>> subjects;
    for (size_t i = 0; i < images.size(); i++)
        subjects.emplace_back(images[i].manifestDescriptor.digest, from[i]);
    if (index && indexFrom) subjects.emplace_back(index->digest, *indexFrom);
    auto sameRepository = [&](const ImageRef& src) {
        return src.kind == ImageRef::Kind::Docker && dest.kind == ImageRef::Kind::Docker &&
               dockerReference(src.ref).repository() == dockerReference(dest.ref).repository();
    };
    // Where DEST keeps them (a docker-archive does not), and not there already (a subject of
    // the same repository has its referrers and .sig tag there).
    std::vector<std::vector<Descriptor>> attachments(subjects.size());
    size_t attached = 0;
    if (dest.kind != ImageRef::Kind::DockerArchive)
        for (size_t i = 0; i < subjects.size(); i++) {
            if (sameRepository(subjects[i].second)) continue;
            attachments[i] = loadAttachments(store, subjects[i].second, g, subjects[i].first);
            attached += attachments[i].size();
        }
    bool pulled = std::any_of(from.begin(), from.end(),
                              [](auto& f) { return f.kind == ImageRef::Kind::Docker; });
    if (!index) {
        saveAnyImage(store, images[0], dest, g, pulled, attachments[0]);
    } else if (dest.kind == ImageRef::Kind::Docker) {
        registry::Session session(registryOptions(g));
        auto ref = dockerReference(dest.ref);
        session.pushIndex(store, *index, images, ref);
        for (auto& a : attachments)
            session.attach(store, a, ref);
    } else {
        if (dest.kind == ImageRef::Kind::Oci)
            for (size_t i = 0; i < images.size(); i++)
                if (from[i].kind == ImageRef::Kind::Docker)
                    linkBlobsFromStore(store, images[i], dest.path);
        std::vector<Descriptor> all;
        for (auto& a : attachments)
            all.insert(all.end(), a.begin(), a.end());
        saveIndex(store, *index, images, dest, all);
    }
    // Between registries, cosign's .sig tags too (verifiers that read only those).
    if (dest.kind == ImageRef::Kind::Docker) {
        registry::Session session(registryOptions(g));
        for (auto& [subject, src] : subjects) {
            if (src.kind != ImageRef::Kind::Docker || sameRepository(src)) continue;
            if (auto sig = build::pullCosignSignatures(session, store, dockerReference(src.ref),
                                                       subject)) {
                build::copyCosignSignatures(session, store, *sig, dockerReference(dest.ref),
                                            subject);
                attached++;
            }
        }
    }
    if (attached && !g.quiet)
        display().message(concat("with ", plural(attached, "attachment", "attachments"),
                                 " (grocker attestations ", dest.str(), ")"));
    return attached;
}

Digest copyWithAttachments(Store& store, const ImageRef& src, const ImageRef& dest,
                           const GlobalOptions& g)
{
    ImageSet set;
    if (!g.allPlatforms)
        set.images.push_back(loadAnyImage(store, src, g));
    else if (src.kind == ImageRef::Kind::Docker)
        set = registry::Session(registryOptions(g)).pullSet(store, dockerReference(src.ref));
    else
        set = loadImageSet(store, src);
    if (set.index && dest.kind == ImageRef::Kind::DockerArchive)
        throw UsageError(dest.str(), ": a docker-archive holds one image, not the index of ",
                         set.images.size(),
                         " images that --all copies: write it to oci:, oci-archive: or "
                         "docker://, or copy one platform with --platform");
    if (!g.quiet && set.index)
        display().message(concat("an index of ", set.images.size(), " images, copied whole"));
    // The attachments of each image and of the index (its signature): a signed image copied
    // elsewhere stays signed.
    saveWithAttachments(store, set.index, set.images, std::vector<ImageRef>(set.images.size(), src),
                        src, dest, g);
    return set.index ? set.index->digest : set.images[0].manifestDescriptor.digest;
}

Runners registerRegistryCommands(CLI::App& app, GlobalOptions& global)
{
    Runners runners;
    static std::string pullRef, pullDest;
    auto* pull =
        app.add_subcommand("pull", "Pull an image from a registry to DEST; prints its digest");
    pull->add_option("REF", pullRef, "host/repository:tag or @digest, with or without docker://")
        ->required();
    pull->add_option("DEST", pullDest,
                     "Where to write it: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE")
        ->required();
    addProgressOption(pull, global);
    addPlatformOption(pull, global);
    addAllOption(pull, global);
    runners.emplace_back(pull, [&global] { return runPull(global, pullRef, pullDest); });

    static std::string pushSrc, pushRef;
    auto* push =
        app.add_subcommand("push", "Push the image at SRC to a registry; prints its digest");
    push->add_option("SRC", pushSrc,
                     "oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE or docker://REF")
        ->required();
    push->add_option("REF", pushRef, "host/repository:tag or @digest, with or without docker://")
        ->required();
    addProgressOption(push, global);
    addAllOption(push, global);
    runners.emplace_back(push, [&global] { return runPush(global, pushSrc, pushRef); });

    static LoginOptions lo;
    auto* login = app.add_subcommand(
        "login", "Check credentials against a registry and save them in auth.json");
    login->add_option("HOST", lo.host, "Registry host[:port] (docker.io for Docker Hub)")
        ->required();
    login->add_option("-u,--username", lo.username, "User name");
    login->add_flag("--password-stdin", lo.passwordStdin, "Read the password from standard input");
    runners.emplace_back(login, [&global] { return runLogin(global, lo); });

    static std::string logoutHost;
    auto* logout = app.add_subcommand("logout", "Remove a registry's credentials from auth.json");
    logout->add_option("HOST", logoutHost, "Registry host[:port]")->required();
    runners.emplace_back(logout, [&global] { return runLogout(global, logoutHost); });
    return runners;
}

} // namespace grocker
