#include "grocker/oci/signature.hh"

#include "grocker/error.hh"
#include "grocker/file.hh"
#include "grocker/strings.hh"
#include "helpers.hh"
#include "key-envelope.hh"
#include "oci-helpers.hh"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

using namespace grocker;
using namespace grocker::oci;
using namespace grocker::test;
using json = nlohmann::ordered_json;

namespace {

static_assert(!std::is_copy_constructible_v<SigningKey> &&
              std::is_move_constructible_v<SigningKey>);
static_assert(!std::is_copy_constructible_v<VerifyKey> && std::is_move_constructible_v<VerifyKey>);

const Digest image =
    Digest::parse("sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f");
const Digest other = sha256("another image");

// Runs an openssl command, failing the test when it fails; returns its stdout.
std::string openssl(const std::vector<std::string>& args)
{
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
    EXPECT_EQ(r.status, 0) << joinQuoted(argv) << ": " << r.err;
    return r.out;
}

// A password source that counts how often it is asked.
struct Password {
    std::string text;
    int asked = 0;
    PasswordSource source()
    {
        return [this] {
            asked++;
            return text;
        };
    }
};

PasswordSource noPassword()
{
    return [] {
        ADD_FAILURE() << "a password was asked for a plain key";
        return std::string();
    };
}

// What `openssl pkey` says the public key of a private key file is.
std::string publicPemOf(const std::filesystem::path& privateKey, const std::string& pass = "")
{
    std::vector<std::string> args{"pkey", "-in", privateKey.string(), "-pubout"};
    if (!pass.empty()) args.insert(args.end(), {"-passin", "pass:" + pass});
    return openssl(args);
}

} // namespace

// --- keys ---

TEST(Signature, SignsAndVerifies)
{
    auto key = SigningKey::generate();
    auto sig = key.sign("payload");
    EXPECT_TRUE(key.publicKey().verify("payload", sig));
    // ECDSA draws a nonce: two signatures differ, both verify.
    auto again = key.sign("payload");
    EXPECT_NE(sig, again);
    EXPECT_TRUE(key.publicKey().verify("payload", again));
}

TEST(Signature, VerifyFailsWithAnotherKeyOrPayload)
{
    auto key = SigningKey::generate(), stranger = SigningKey::generate();
    auto sig = key.sign("payload");
    EXPECT_FALSE(stranger.publicKey().verify("payload", sig));
    EXPECT_FALSE(key.publicKey().verify("payloaD", sig));
    EXPECT_FALSE(key.publicKey().verify("payload", ""));
    EXPECT_FALSE(key.publicKey().verify("payload", "not DER at all"));
    auto flipped = sig;
    flipped[flipped.size() - 1] ^= 1;
    EXPECT_FALSE(key.publicKey().verify("payload", flipped));
}

TEST(Signature, OpenSslAgreesBothWays)
{
    TempDir tmp;
    auto key = SigningKey::generate();
    writeTestFile(tmp / "pub.pem", key.publicKey().pem());
    writeTestFile(tmp / "data", "signed bytes");
    writeTestFile(tmp / "sig", key.sign("signed bytes"));
    auto r = run({"openssl", "dgst", "-sha256", "-verify", (tmp / "pub.pem").string(), "-signature",
                  (tmp / "sig").string(), (tmp / "data").string()});
    EXPECT_EQ(r.status, 0) << r.out << r.err;

    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
             (tmp / "k.pem").string()});
    openssl({"dgst", "-sha256", "-sign", (tmp / "k.pem").string(), "-out", (tmp / "osig").string(),
             (tmp / "data").string()});
    auto theirs = SigningKey::load(tmp / "k.pem", noPassword());
    EXPECT_TRUE(theirs.publicKey().verify("signed bytes", readFile(tmp / "osig")));
}

TEST(Signature, LoadsPkcs8)
{
    TempDir tmp;
    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
             (tmp / "k.pem").string()});
    auto key = SigningKey::load(tmp / "k.pem", noPassword());
    EXPECT_EQ(key.publicKey().pem(), publicPemOf(tmp / "k.pem"));
}

TEST(Signature, LoadsSec1WithAndWithoutParameters)
{
    TempDir tmp;
    // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
    openssl({"ecparam", "-name", "prime256v1", "-genkey", "-out", (tmp / "params.pem").string()});
    EXPECT_NE(readFile(tmp / "params.pem").find("BEGIN EC PARAMETERS"), std::string::npos);
    auto key = SigningKey::load(tmp / "params.pem", noPassword());
    EXPECT_EQ(key.publicKey().pem(), publicPemOf(tmp / "params.pem"));

    openssl({"ec", "-in", (tmp / "params.pem").string(), "-out", (tmp / "sec1.pem").string()});
    EXPECT_EQ(readFile(tmp / "sec1.pem").rfind("-----BEGIN EC PRIVATE KEY-----\n", 0), 0u);
    EXPECT_EQ(SigningKey::load(tmp / "sec1.pem", noPassword()).publicKey().pem(),
              key.publicKey().pem());
}

TEST(Signature, LoadsEncryptedPkcs8AndAsksOnce)
{
    TempDir tmp;
    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-256-cbc",
             "-pass", "pass:s3cret", "-out", (tmp / "k.pem").string()});
    EXPECT_EQ(readFile(tmp / "k.pem").rfind("-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 0), 0u);
    Password pw{"s3cret"};
    auto key = SigningKey::load(tmp / "k.pem", pw.source());
    EXPECT_EQ(pw.asked, 1);
    EXPECT_EQ(key.publicKey().pem(), publicPemOf(tmp / "k.pem", "s3cret"));

    Password wrong{"guess"};
    auto what = "'" + (tmp / "k.pem").string() + "'";
    EXPECT_EQ(errorOf([&] { SigningKey::load(tmp / "k.pem", wrong.source()); }),
              "the password does not open " + what + " (a wrong password, or a damaged file)");
    EXPECT_EQ(errorOf([&] { SigningKey::load(tmp / "k.pem", nullptr); }),
              what + " is encrypted, and no password was given");
}

TEST(Signature, LoadsSec1WithProcTypeEncryption)
{
    TempDir tmp;
    openssl({"ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
             (tmp / "plain.pem").string()});
    openssl({"ec", "-in", (tmp / "plain.pem").string(), "-aes256", "-passout", "pass:pw", "-out",
             (tmp / "k.pem").string()});
    EXPECT_NE(readFile(tmp / "k.pem").find("Proc-Type: 4,ENCRYPTED"), std::string::npos);
    Password pw{"pw"};
    auto key = SigningKey::load(tmp / "k.pem", pw.source());
    EXPECT_EQ(pw.asked, 1);
    EXPECT_EQ(key.publicKey().pem(), publicPemOf(tmp / "plain.pem"));
    Password wrong{"nope"};
    EXPECT_EQ(errorOf([&] { SigningKey::load(tmp / "k.pem", wrong.source()); }),
              "the password does not open '" + (tmp / "k.pem").string() +
                  "' (a wrong password, or a damaged file)");
}

TEST(Signature, RefusesOtherKeysSayingWhatTheyAre)
{
    TempDir tmp;
    const std::string advice = ": grocker signs and verifies with ECDSA P-256 keys only, the kind "
                               "'cosign generate-key-pair' makes";
    openssl({"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
             (tmp / "rsa.pem").string()});
    EXPECT_EQ(errorOf([&] { SigningKey::load(tmp / "rsa.pem", noPassword()); }),
              "'" + (tmp / "rsa.pem").string() +
                  "' holds a key of type RSA (2048 bits), not ECDSA P-256" + advice);

    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out",
             (tmp / "p384.pem").string()});
    EXPECT_EQ(errorOf([&] { SigningKey::load(tmp / "p384.pem", noPassword()); }),
              "'" + (tmp / "p384.pem").string() +
                  "' holds an ECDSA key on curve secp384r1, not P-256" + advice);
    writeTestFile(tmp / "p384.pub", publicPemOf(tmp / "p384.pem"));
    EXPECT_EQ(errorOf([&] { VerifyKey::load(tmp / "p384.pub"); }),
              "'" + (tmp / "p384.pub").string() +
                  "' holds an ECDSA key on curve secp384r1, not P-256" + advice);

    openssl({"genpkey", "-algorithm", "ED25519", "-out", (tmp / "ed.pem").string()});
    writeTestFile(tmp / "ed.pub", publicPemOf(tmp / "ed.pem"));
    EXPECT_EQ(errorOf([&] { VerifyKey::load(tmp / "ed.pub"); }),
              "'" + (tmp / "ed.pub").string() +
                  "' holds a key of type ED25519 (256 bits), not ECDSA P-256" + advice);

    openssl({"rsa", "-in", (tmp / "rsa.pem").string(), "-traditional", "-out",
             (tmp / "pkcs1.pem").string()});
    EXPECT_EQ(errorOf([&] { SigningKey::load(tmp / "pkcs1.pem", noPassword()); }),
              "'" + (tmp / "pkcs1.pem").string() +
                  "' holds a PEM 'RSA PRIVATE KEY', not a key grocker reads: it takes ECDSA P-256 "
                  "keys as cosign writes them (ENCRYPTED SIGSTORE PRIVATE KEY) or as PEM PRIVATE "
                  "KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY");
}

TEST(Signature, SaysWhichHalfOfThePairWasMeant)
{
    auto key = SigningKey::generate();
    auto pair = key.cosignKeyPair("pw");
    EXPECT_EQ(errorOf([&] { SigningKey::fromPem(pair.publicPem, noPassword(), "'cosign.pub'"); }),
              "'cosign.pub' holds a public key: signing needs the private half of the pair "
              "(cosign.key)");
    EXPECT_EQ(errorOf([&] { VerifyKey::fromPem(pair.privatePem, "'cosign.key'"); }),
              "'cosign.key' holds a private key: verifying takes the public half of the pair "
              "(cosign.pub)");
}

TEST(Signature, RefusesWhatIsNoKey)
{
    TempDir tmp;
    writeTestFile(tmp / "text", "hello\n");
    EXPECT_EQ(errorOf([&] { SigningKey::load(tmp / "text", noPassword()); }),
              "'" + (tmp / "text").string() +
                  "' is not a PEM file: it has no '-----BEGIN ...-----' line");
    EXPECT_EQ(errorOf([&] { VerifyKey::load(tmp / "missing"); }),
              "unable to open the key '" + (tmp / "missing").string() +
                  "': No such file or directory");
    EXPECT_EQ(errorOf([&] { VerifyKey::load(tmp.path()); }),
              "the key '" + tmp.path().string() + "' is not a file: give the path of a PEM file");
}

TEST(Signature, ADamagedKeyIsNamedButNotShown)
{
    TempDir tmp;
    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
             (tmp / "k.pem").string()});
    auto pem = readFile(tmp / "k.pem");
    // Cut the DER short: the PEM still reads, the key inside does not.
    auto lines = pem.substr(pem.find('\n') + 1);
    auto body = lines.substr(0, 64);
    writeTestFile(tmp / "cut.pem",
                  "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n");
    auto msg = errorOf([&] { SigningKey::load(tmp / "cut.pem", noPassword()); });
    EXPECT_EQ(
        msg.rfind("'" + (tmp / "cut.pem").string() + "' holds a damaged PKCS#8 key (OpenSSL: ", 0),
        0u)
        << msg;
    EXPECT_EQ(msg.find(body.substr(0, 16)), std::string::npos) << msg;
}

TEST(Signature, HintIsBase64OfTheSha256OfTheDer)
{
    TempDir tmp;
    auto key = SigningKey::generate().publicKey();
    writeTestFile(tmp / "pub.pem", key.pem());
    openssl({"pkey", "-pubin", "-in", (tmp / "pub.pem").string(), "-outform", "DER", "-out",
             (tmp / "pub.der").string()});
    EXPECT_EQ(key.der(), readFile(tmp / "pub.der"));
    auto digest = openssl({"dgst", "-sha256", "-binary", (tmp / "pub.der").string()});
    EXPECT_EQ(key.hint(), base64Encode(digest));
    EXPECT_EQ(key.hint().size(), 44u);
    EXPECT_EQ(VerifyKey::fromPem(key.pem()).hint(), key.hint());
}

// --- cosign's encrypted key pair ---

TEST(CosignKey, RoundTrips)
{
    TempDir tmp;
    auto key = SigningKey::generate();
    auto pair = key.cosignKeyPair("correct horse");
    EXPECT_EQ(pair.privatePem.rfind("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n", 0), 0u);
    EXPECT_EQ(pair.publicPem, key.publicKey().pem());
    writeTestFile(tmp / "cosign.key", pair.privatePem, 0600);
    writeTestFile(tmp / "cosign.pub", pair.publicPem);
    Password pw{"correct horse"};
    auto loaded = SigningKey::load(tmp / "cosign.key", pw.source());
    EXPECT_EQ(pw.asked, 1);
    EXPECT_EQ(loaded.publicKey().pem(), pair.publicPem);
    EXPECT_TRUE(VerifyKey::load(tmp / "cosign.pub").verify("x", loaded.sign("x")));
}

TEST(CosignKey, WrongPassword)
{
    auto pair = SigningKey::generate().cosignKeyPair("right");
    Password wrong{"wrong"};
    EXPECT_EQ(
        errorOf([&] { SigningKey::fromPem(pair.privatePem, wrong.source(), "'cosign.key'"); }),
        "the password does not open 'cosign.key' (a wrong password, or a damaged file)");
    Password empty{""};
    EXPECT_EQ(
        errorOf([&] { SigningKey::fromPem(pair.privatePem, empty.source(), "'cosign.key'"); }),
        "the password does not open 'cosign.key' (a wrong password, or a damaged file)");
}

TEST(CosignKey, EmptyPasswordAndTheOlderPemType)
{
    auto key = SigningKey::generate();
    auto pair = key.cosignKeyPair("");
    Password empty{""};
    EXPECT_EQ(SigningKey::fromPem(pair.privatePem, empty.source()).publicKey().pem(),
              pair.publicPem);
    // cosign before 1.x wrote "ENCRYPTED COSIGN PRIVATE KEY" around the same envelope.
    auto older = pair.privatePem;
    for (auto pos = older.find("SIGSTORE"); pos != std::string::npos; pos = older.find("SIGSTORE"))
        older.replace(pos, 8, "COSIGN");
    EXPECT_EQ(SigningKey::fromPem(older, empty.source()).publicKey().pem(), pair.publicPem);
}

TEST(CosignKey, EnvelopeIsGoSecureSystemsLibs)
{
    auto sealed = sealKeyEnvelope("plain bytes", "pw");
    // Field names and order of go-securesystemslib's `encrypted` structs.
    EXPECT_EQ(
        sealed.rfind(R"({"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":")", 0), 0u)
        << sealed;
    auto j = json::parse(sealed);
    EXPECT_EQ(base64Decode(j["kdf"]["salt"].get<std::string>()).size(), 32u);
    EXPECT_EQ(j["cipher"]["name"], "nacl/secretbox");
    EXPECT_EQ(base64Decode(j["cipher"]["nonce"].get<std::string>()).size(), 24u);
    EXPECT_EQ(base64Decode(j["ciphertext"].get<std::string>()).size(), 11u + 16u);
    EXPECT_EQ(openKeyEnvelope(sealed, "pw", "k").view(), "plain bytes");
    // A fresh salt and nonce each time.
    EXPECT_NE(sealKeyEnvelope("plain bytes", "pw"), sealed);
}

TEST(CosignKey, OpensTheGoImplementationsVectors)
{
    // go-securesystemslib's encrypted_test.go: TestDecrypt's vector, and its OWASP-strength one
    // (N=131072: 128 MiB of scrypt, past OpenSSL's default memory limit).
    auto legacy =
        R"({"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="})";
    EXPECT_EQ(openKeyEnvelope(legacy, "supersecret", "v").view(), "reallyimportant");
    auto owasp =
        R"({"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="})";
    // That one seals the JSON of the bytes, as their Marshal does.
    EXPECT_EQ(openKeyEnvelope(owasp, "supersecret", "v").view(), "\"cmVhbGx5aW1wb3J0YW50\"");
    EXPECT_EQ(errorOf([&] { openKeyEnvelope(legacy, "supersecreT", "'v'"); }),
              "the password does not open 'v' (a wrong password, or a damaged file)");
}

TEST(CosignKey, RefusesStrangeEnvelopes)
{
    auto good = json::parse(sealKeyEnvelope("x", "pw"));
    auto with = [&](auto change) {
        auto j = good;
        change(j);
        return errorOf([&] { openKeyEnvelope(j.dump(), "pw", "'k'"); });
    };
    EXPECT_EQ(with([](json& j) { j["kdf"]["params"]["N"] = 1 << 30; }),
              "'k' asks for scrypt N=1073741824, r=8, p=1, parameters cosign never writes: "
              "refused, as they could take all the memory (N=32768, 65536 or 131072 with r=8, p=1 "
              "are read)");
    EXPECT_EQ(with([](json& j) { j["kdf"]["name"] = "pbkdf2"; }),
              "'k' derives its key with 'pbkdf2', not scrypt: it is not a key cosign writes");
    EXPECT_EQ(with([](json& j) { j["cipher"]["name"] = "aes-gcm"; }),
              "'k' is encrypted with 'aes-gcm', not nacl/secretbox: it is not a key cosign writes");
    EXPECT_EQ(with([](json& j) { j["cipher"]["nonce"] = base64Encode("short"); }),
              "'k' is not a cosign encrypted key: its nonce is 5 bytes, not 24");
    EXPECT_EQ(with([](json& j) { j["ciphertext"] = "***"; }),
              "'k' is not a cosign encrypted key: its 'ciphertext' is not base64");
    EXPECT_EQ(with([](json& j) { j.erase("kdf"); }),
              "'k' is not a cosign encrypted key: it has no object 'kdf'");
    EXPECT_EQ(errorOf([&] { openKeyEnvelope("not json", "pw", "'k'"); }),
              "'k' is not a cosign encrypted key: its content is not a JSON object");
    // A flipped ciphertext byte: the MAC says no.
    EXPECT_EQ(with([](json& j) {
                  auto box = base64Decode(j["ciphertext"].get<std::string>());
                  box[box.size() - 1] ^= 1;
                  j["ciphertext"] = base64Encode(box);
              }),
              "the password does not open 'k' (a wrong password, or a damaged file)");
}

// --- simple signing ---

TEST(SimpleSigning, PayloadIsCosignsByteForByte)
{
    // sigstore's payload_test.go, "no claims".
    EXPECT_EQ(
        simpleSigningPayload("example.com/test/image", image),
        R"({"critical":{"identity":{"docker-reference":"example.com/test/image"},"image":{"docker-manifest-digest":"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},"type":"cosign container image signature"},"optional":null})");
}

TEST(SimpleSigning, Verifies)
{
    auto key = SigningKey::generate();
    auto payload = simpleSigningPayload("registry.example/team/app", image);
    auto sig = simpleSigningSignature(key, payload);
    EXPECT_TRUE(key.publicKey().verify(payload, base64Decode(sig)));
    auto claim = verifySimpleSigning(payload, sig, key.publicKey(), image);
    EXPECT_EQ(claim.dockerReference, "registry.example/team/app");
    EXPECT_EQ(claim.manifestDigest, image);
}

TEST(SimpleSigning, SaysWhichCheckFailed)
{
    auto key = SigningKey::generate();
    auto payload = simpleSigningPayload("registry.example/team/app", image);
    auto sig = simpleSigningSignature(key, payload);
    auto pub = key.publicKey();
    EXPECT_EQ(errorOf([&] {
                  verifySimpleSigning(payload, sig, SigningKey::generate().publicKey(), image);
              }),
              "the cosign signature does not verify with this key");
    EXPECT_EQ(errorOf([&] { verifySimpleSigning(payload + " ", sig, pub, image); }),
              "the cosign signature does not verify with this key");
    EXPECT_EQ(errorOf([&] { verifySimpleSigning(payload, sig, pub, other); }),
              "the cosign signature signs " + image.str() + ", not " + other.str());
    EXPECT_EQ(errorOf([&] { verifySimpleSigning(payload, "!!", pub, image); }),
              "the cosign signature is not base64");
    auto atomic = R"({"critical":{"type":"atomic container signature"}})";
    EXPECT_EQ(errorOf([&] {
                  verifySimpleSigning(atomic, simpleSigningSignature(key, atomic), pub, image);
              }),
              "the cosign signature's payload is of type 'atomic container signature', not "
              "'cosign container image signature'");
    EXPECT_EQ(
        errorOf([&] { verifySimpleSigning("[]", simpleSigningSignature(key, "[]"), pub, image); }),
        "the cosign signature's payload is not a JSON object");
}

// --- the Sigstore bundle ---

namespace {

// A bundle as cosign 3 lays it out around `statement`, signed by `key`.
std::string bundleAround(const SigningKey& key, const std::string& statement)
{
    auto pae = concat("DSSEv1 ", media::inToto.size(), " ", media::inToto, " ", statement.size(),
                      " ", statement);
    json b = json::parse(sigstoreBundle(key, image));
    b["dsseEnvelope"]["payload"] = base64Encode(statement);
    b["dsseEnvelope"]["signatures"][0]["sig"] = base64Encode(key.sign(pae));
    return b.dump();
}

std::string verifyError(const std::string& bundle, const VerifyKey& key, const Digest& d = image)
{
    return errorOf([&] { verifySigstoreBundle(bundle, key, d); });
}

} // namespace

TEST(SigstoreBundle, IsWhatCosign3Writes)
{
    auto key = SigningKey::generate();
    auto text = sigstoreBundle(key, image);
    auto b = json::parse(text);
    std::vector<std::string> keys;
    for (auto& [k, v] : b.items())
        keys.push_back(k);
    EXPECT_EQ(keys,
              (std::vector<std::string>{"mediaType", "verificationMaterial", "dsseEnvelope"}));
    EXPECT_EQ(b["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
    EXPECT_EQ(b["verificationMaterial"]["publicKey"]["hint"], key.publicKey().hint());
    EXPECT_EQ(b["verificationMaterial"]["tlogEntries"], json::array());
    EXPECT_FALSE(b["verificationMaterial"].contains("timestampVerificationData"));
    auto& env = b["dsseEnvelope"];
    EXPECT_EQ(env["payloadType"], "application/vnd.in-toto+json");
    EXPECT_EQ(env["signatures"].size(), 1u);
    EXPECT_FALSE(env["signatures"][0].contains("keyid"));
    EXPECT_EQ(
        base64Decode(env["payload"].get<std::string>()),
        R"({"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},"annotations":{}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}})");
    EXPECT_NO_THROW(verifySigstoreBundle(text, key.publicKey(), image));

    auto annotated = json::parse(sigstoreBundle(key, image, {{"build", "42"}}));
    auto statement =
        json::parse(base64Decode(annotated["dsseEnvelope"]["payload"].get<std::string>()));
    EXPECT_EQ(statement["subject"][0]["annotations"], json({{"build", "42"}}));
}

TEST(SigstoreBundle, ReferrerAnnotations)
{
    EXPECT_EQ(sigstoreBundleAnnotations(1700000000),
              (std::map<std::string, std::string>{
                  {"dev.sigstore.bundle.content", "dsse-envelope"},
                  {"dev.sigstore.bundle.predicateType", "https://sigstore.dev/cosign/sign/v1"},
                  {"org.opencontainers.image.created", "2023-11-14T22:13:20Z"},
              }));
}

TEST(SigstoreBundle, SaysWhichCheckFailed)
{
    auto key = SigningKey::generate(), stranger = SigningKey::generate();
    auto pub = key.publicKey();
    auto good = sigstoreBundle(key, image);
    auto with = [&](auto change) {
        json b = json::parse(good);
        change(b);
        return verifyError(b.dump(), pub);
    };

    EXPECT_EQ(verifyError("{not json", pub), "not a sigstore bundle: it is not JSON");
    EXPECT_EQ(verifyError("[]", pub), "not a sigstore bundle: it is not a JSON object");
    EXPECT_EQ(with([](json& b) { b.erase("mediaType"); }),
              "not a sigstore bundle: it has no string 'mediaType'");
    EXPECT_EQ(with([](json& b) {
                  b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1";
              }),
              "the sigstore bundle's media type is "
              "'application/vnd.dev.sigstore.bundle+json;version=0.1', not "
              "'application/vnd.dev.sigstore.bundle.v0.3+json': grocker reads the bundles cosign 3 "
              "writes");
    EXPECT_EQ(verifyError(good, stranger.publicKey()),
              "the sigstore bundle was signed with another key: its hint is '" + pub.hint() +
                  "', this key's is '" + stranger.publicKey().hint() + "'");
    // Without the hint, the signature itself says no.
    json noHint = json::parse(good);
    noHint["verificationMaterial"]["publicKey"].erase("hint");
    EXPECT_EQ(verifyError(noHint.dump(), stranger.publicKey()),
              "the sigstore bundle's signature does not verify with this key");
    EXPECT_NO_THROW(verifySigstoreBundle(noHint.dump(), pub, image));

    EXPECT_EQ(with([](json& b) {
                  auto sig =
                      base64Decode(b["dsseEnvelope"]["signatures"][0]["sig"].get<std::string>());
                  sig[sig.size() / 2] ^= 0x01;
                  b["dsseEnvelope"]["signatures"][0]["sig"] = base64Encode(sig);
              }),
              "the sigstore bundle's signature does not verify with this key");
    EXPECT_EQ(with([](json& b) {
                  auto payload = base64Decode(b["dsseEnvelope"]["payload"].get<std::string>());
                  payload.replace(payload.find("d34db33f"), 8, "0badf00d");
                  b["dsseEnvelope"]["payload"] = base64Encode(payload);
              }),
              "the sigstore bundle's signature does not verify with this key");
    EXPECT_EQ(verifyError(good, pub, other),
              "the sigstore bundle signs " + image.str() + ", not " + other.str());

    EXPECT_EQ(with([](json& b) {
                  b["verificationMaterial"].erase("publicKey");
                  b["verificationMaterial"]["certificate"] = {{"rawBytes", "MIIB"}};
              }),
              "the sigstore bundle was signed keyless (it carries a certificate), not with a key: "
              "grocker checks key signatures only");
    EXPECT_EQ(with([](json& b) {
                  b.erase("dsseEnvelope");
                  b["messageSignature"] = {{"signature", "MEUC"}};
              }),
              "the sigstore bundle holds a message signature, not the DSSE envelope cosign 3 signs "
              "an image with");
    EXPECT_EQ(with([](json& b) { b.erase("dsseEnvelope"); }),
              "not a sigstore bundle: it has no object 'dsseEnvelope'");
    EXPECT_EQ(with([](json& b) { b["dsseEnvelope"]["payloadType"] = "text/plain"; }),
              "the sigstore bundle's envelope holds 'text/plain', not "
              "'application/vnd.in-toto+json' (an in-toto statement)");
    EXPECT_EQ(with([](json& b) {
                  auto& sigs = b["dsseEnvelope"]["signatures"];
                  sigs.push_back(sigs[0]);
              }),
              "not a sigstore bundle: its envelope has 2 signatures, not one");
    EXPECT_EQ(with([](json& b) { b["dsseEnvelope"]["payload"] = "%%%"; }),
              "not a sigstore bundle: its 'dsseEnvelope.payload' is not base64");
}

TEST(SigstoreBundle, ChecksTheSignedStatement)
{
    auto key = SigningKey::generate();
    auto pub = key.publicKey();
    auto statement = [](const std::string& predicate, const std::string& subjects) {
        return R"({"_type":"https://in-toto.io/Statement/v1","subject":)" + subjects +
               R"(,"predicateType":")" + predicate + R"(","predicate":{}})";
    };
    const std::string sign = "https://sigstore.dev/cosign/sign/v1";
    auto digestOf = [](const Digest& d) {
        return R"({"digest":{")" + d.algorithm() + R"(":")" + d.hex() + R"("}})";
    };
    EXPECT_EQ(verifyError(bundleAround(key, statement("https://slsa.dev/provenance/v1",
                                                      "[" + digestOf(image) + "]")),
                          pub),
              "the sigstore bundle's statement is of predicate type "
              "'https://slsa.dev/provenance/v1', not cosign's image signature "
              "('https://sigstore.dev/cosign/sign/v1')");
    // One subject among several is enough, as for in-toto.
    EXPECT_NO_THROW(
        verifySigstoreBundle(bundleAround(key, statement(sign, std::string("[")
                                                                   .append(digestOf(other))
                                                                   .append(",")
                                                                   .append(digestOf(image))
                                                                   .append("]"))),
                             pub, image));
    EXPECT_EQ(
        verifyError(bundleAround(
                        key, statement(sign, std::string("[").append(digestOf(other)).append("]"))),
                    pub),
        "the sigstore bundle signs " + other.str() + ", not " + image.str());
    EXPECT_EQ(verifyError(bundleAround(key, statement(sign, "[]")), pub),
              "the sigstore bundle's statement names no subject digest");
    EXPECT_EQ(verifyError(bundleAround(key, "[1]"), pub),
              "the sigstore bundle's statement is not a JSON object");
    EXPECT_EQ(verifyError(bundleAround(key, R"({"_type":"x"})"), pub),
              "the sigstore bundle's payload is not an in-toto statement (its _type is 'x')");
}
