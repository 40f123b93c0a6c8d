// grocker sign, verify and generate-key-pair: image signatures as cosign 3 makes and checks them
// with a key, offline (src/build/signing.hh; the formats in oci/signature.hh).

#include "build/signing.hh"
#include "commands.hh"
#include "grocker/display.hh"
#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/oci/reference.hh"
#include "grocker/oci/referrers.hh"
#include "grocker/strings.hh"

#include <cstdlib>
#include <fcntl.h>
#include <iostream>
#include <termios.h>
#include <unistd.h>

namespace grocker {

namespace fs = std::filesystem;
using namespace grocker::oci;

namespace {

// A line typed on the terminal without echo.
std::string askSecret(const std::string& prompt)
{
    AutoCloseFD tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (!tty) return {};
    auto put = [&](std::string_view s) {
        [[maybe_unused]] auto n = ::write(tty.get(), s.data(), s.size());
    };
    put(prompt);
    termios old{};
    bool restore = ::tcgetattr(tty.get(), &old) == 0;
    if (restore) {
        termios quiet = old;
        quiet.c_lflag &= ~tcflag_t(ECHO);
        ::tcsetattr(tty.get(), TCSAFLUSH, &quiet);
    }
    std::string line;
    char c;
    while (::read(tty.get(), &c, 1) == 1 && c != '\n')
        line += c;
    if (restore) ::tcsetattr(tty.get(), TCSAFLUSH, &old);
    put("\n");
    return line;
}

// $COSIGN_PASSWORD (what cosign reads; empty is a password), else the terminal.
std::string keyPassword(const std::string& what)
{
    if (const char* p = std::getenv("COSIGN_PASSWORD")) return p;
    if (!::isatty(0) && !::isatty(2))
        throw UsageError(what, " is encrypted: set COSIGN_PASSWORD to its password");
    return askSecret("Password for " + what + ": ");
}

struct SignOptions {
    std::string key, image;
};

int runSign(const GlobalOptions& g, const SignOptions& o)
{
    auto key = loadSigningKey(o.key);
    auto src = imageWithAttachments(o.image, "signatures");
    auto store = openStore(g);
    auto image = loadAnyImage(store, src, g, src.kind != ImageRef::Kind::Docker);
    auto bundle = build::signatureReferrer(store, key, image.manifestDescriptor);
    if (src.kind == ImageRef::Kind::Docker) {
        auto options = registryOptions(g);
        options.patientMerges = true;
        registry::Session session(options);
        auto ref = Reference::parse(src.ref);
        session.attach(store, {bundle}, ref);
        build::pushCosignSignatures(session, store, key, ref, image.manifestDescriptor.digest);
    } else {
        // Written again with what it holds: the layout's other entries stay, the archive's
        // attachments are read and written back.
        std::vector<Descriptor> attachments;
        if (src.kind == ImageRef::Kind::OciArchive)
            attachments = loadAttachments(store, src, g, image.manifestDescriptor.digest);
        attachments.push_back(bundle);
        saveImage(store, image, src, attachments);
    }
    if (!g.quiet)
        display().message(concat("signed ", image.manifestDescriptor.digest.str(), " of ",
                                 src.str(), " with the key ", key.publicKey().hint(),
                                 src.kind == ImageRef::Kind::Docker
                                     ? " (a Sigstore bundle and cosign's .sig tag)"
                                     : " (a Sigstore bundle)"));
    std::cout << bundle.digest.str() << "\n";
    return 0;
}

struct VerifyOptions {
    std::string key, image;
};

int runVerify(const GlobalOptions& g, const VerifyOptions& o)
{
    auto key = VerifyKey::load(o.key);
    auto src = imageWithAttachments(o.image, "signatures");
    auto store = openStore(g);
    // Every blob read again and checked against its digest, into a store of its own: an image
    // whose layer was altered where it is kept fails here, whatever the store holds already.
    AutoDelete scratch(
        makeTempDir(store.tmpDir(), ".tmp-" + std::to_string(::getpid()) + "-verify-"));
    Store check(scratch.path());
    Image image;
    try {
        image = loadAnyImage(check, src, g, true);
    } catch (Error& e) {
        e.addContext("while reading every blob of " + src.str() + " to check it");
        throw;
    }
    auto subject = image.manifestDescriptor.digest;
    auto attachments = loadAttachments(check, src, g, subject);
    std::optional<Image> cosignSig;
    if (src.kind == ImageRef::Kind::Docker) {
        registry::Session session(registryOptions(g));
        cosignSig = build::pullCosignSignatures(session, check, Reference::parse(src.ref), subject);
    }
    auto checks = build::checkSignatures(check, key, subject, attachments, cosignSig);
    if (checks.empty())
        throw Error(src.str(), ": no signature of its image ", subject.str(),
                    " was found (no Sigstore bundle attached",
                    src.kind == ImageRef::Kind::Docker ? ", no cosign .sig tag" : "",
                    "); sign it with grocker sign --key KEY ", src.str());
    std::vector<std::string> verified, failed;
    for (auto& c : checks)
        (c.verified ? verified : failed).push_back(c.verified ? c.what : c.what + ": " + c.why);
    if (verified.empty()) {
        std::string all;
        for (auto& f : failed)
            all += "\n  " + f;
        throw Error(src.str(), ": no signature of its image ", subject.str(),
                    " verifies with the key ", o.key, " (", key.hint(), "):", all);
    }
    if (!g.quiet)
        for (auto& f : failed)
            display().message("not by this key: " + f);
    std::cout << "verified " << src.str() << " (" << subject.str() << ", every blob checked): ";
    for (size_t i = 0; i < verified.size(); i++)
        std::cout << (i ? "; " : "") << verified[i];
    std::cout << "\n";
    return 0;
}

struct KeyPairOptions {
    std::string prefix = "cosign";
};

int runGenerateKeyPair(const GlobalOptions& g, const KeyPairOptions& o)
{
    fs::path priv = o.prefix + ".key", pub = o.prefix + ".pub";
    for (auto& p : {priv, pub})
        if (fs::exists(p))
            throw UsageError("'", p.string(),
                             "' exists: remove it first or give another "
                             "--output-key-prefix");
    std::string password;
    if (const char* p = std::getenv("COSIGN_PASSWORD")) {
        password = p;
    } else {
        if (!::isatty(0) && !::isatty(2))
            throw UsageError("set COSIGN_PASSWORD to the password that will seal '", priv.string(),
                             "' (empty for none)");
        password = askSecret("Password for the private key: ");
        if (askSecret("Again: ") != password) throw UsageError("the passwords differ");
    }
    auto pair = SigningKey::generate().cosignKeyPair(password);
    writeFileAtomic(priv, pair.privatePem, 0600);
    writeFileAtomic(pub, pair.publicPem, 0644);
    if (!g.quiet)
        display().message(concat("wrote ", priv.string(),
                                 " (cosign's encrypted format, mode 0600) and ", pub.string()));
    return 0;
}

} // namespace

SigningKey loadSigningKey(const std::string& path)
{
    return SigningKey::load(path, [&] { return keyPassword("the key '" + path + "'"); });
}

Runners registerSignCommands(CLI::App& app, GlobalOptions& global)
{
    static SignOptions so;
    auto* sign = app.add_subcommand(
        "sign", "Sign an image with an ECDSA P-256 key, offline, as cosign 3 does: a Sigstore "
                "bundle attached to it (and cosign's .sig tag in a registry)");
    sign->add_option("--key", so.key,
                     "The private key: cosign's key pair (password in $COSIGN_PASSWORD) or a "
                     "PEM EC key")
        ->required();
    sign->add_option("IMAGE", so.image, "docker://REF, oci:DIR[:TAG] or oci-archive:FILE")
        ->required();
    addProgressOption(sign, global);

    static VerifyOptions vo;
    auto* verify = app.add_subcommand(
        "verify", "Check that an image is signed by a key (Sigstore bundle or cosign .sig) and "
                  "that every blob matches its digest");
    verify->add_option("--key", vo.key, "The public key (PEM, cosign.pub)")->required();
    verify->add_option("IMAGE", vo.image, "docker://REF, oci:DIR[:TAG] or oci-archive:FILE")
        ->required();
    addProgressOption(verify, global);

    static KeyPairOptions ko;
    auto* gen = app.add_subcommand(
        "generate-key-pair",
        "Write a new ECDSA P-256 key pair as cosign does: PREFIX.key (encrypted with "
        "$COSIGN_PASSWORD) and PREFIX.pub");
    gen->add_option("--output-key-prefix", ko.prefix, "The files' prefix (default cosign)");
    return {{sign, [&global] { return runSign(global, so); }},
            {verify, [&global] { return runVerify(global, vo); }},
            {gen, [&global] { return runGenerateKeyPair(global, ko); }}};
}

} // namespace grocker
