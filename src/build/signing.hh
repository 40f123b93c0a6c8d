#pragma once
// Signing images and checking their signatures as cosign 3 does, offline, with an ECDSA P-256
// key (oci/signature.hh has the formats): a Sigstore bundle attached to the image as an OCI 1.1
// referrer, and in registries cosign's `.sig` tag too, for verifiers that read only that.

#include "grocker/oci/image.hh"
#include "grocker/oci/reference.hh"
#include "grocker/oci/signature.hh"
#include "grocker/oci/store.hh"
#include "grocker/registry/registry.hh"

#include <optional>
#include <string>
#include <vector>

namespace grocker::build {

// cosign's tag of an image's simple signatures: "sha256-<hex>.sig".
std::string cosignSignatureTag(const oci::Digest& subject);

// The repository as a simple-signing payload names it (cosign's docker-reference): registry
// and path, Docker Hub's as index.docker.io.
std::string cosignRepository(const oci::Reference& ref);

// `subject` signed with `key`: a Sigstore bundle, as a referrer in the store.
oci::Descriptor signatureReferrer(oci::Store& store, const oci::SigningKey& key,
                                  const oci::Descriptor& subject);

// Whether `listed` (the referrers of `subject` in `ref`'s repository) holds a Sigstore bundle
// that `key` signed, fetched and checked: a signature as good as a new one (ECDSA's signatures
// differ each time: a rebuild that signed again would add a bundle each time).
bool signedBefore(registry::Session& session, oci::Store& store, const oci::Reference& ref,
                  const oci::Digest& subject, const std::vector<oci::Descriptor>& listed,
                  const oci::VerifyKey& key);

// Attaches to `subject` in `ref`'s repository those of `attachments` (its referrers, in the
// store) that the registry does not list yet, and no new Sigstore bundle where one `key` signed
// is there already (`key` null: unsigned). Returns how many were sent: none on a rebuild with
// nothing changed.
size_t attachMissing(registry::Session& session, oci::Store& store, const oci::Reference& ref,
                     const oci::Digest& subject, const std::vector<oci::Descriptor>& attachments,
                     const oci::VerifyKey* key);

// `attachments` (of `subject`) to write to `dest`, but a new Sigstore bundle of `key` when `dest`
// is an oci: layout that lists one of that key for `subject` already (checked): a rebuild into
// the same layout keeps the signature it has instead of adding one each time.
std::vector<oci::Descriptor> withoutNewBundle(oci::Store& store, const oci::ImageRef& dest,
                                              const oci::Digest& subject,
                                              std::vector<oci::Descriptor> attachments,
                                              const oci::VerifyKey& key);

// The `.sig` image of `subject` in `ref`'s repository, pulled into the store (its payloads
// too, unless `payloads` is false); none when the registry has none.
std::optional<oci::Image> pullCosignSignatures(registry::Session& session, oci::Store& store,
                                               const oci::Reference& ref,
                                               const oci::Digest& subject, bool payloads = true);

// Adds `key`'s simple signature of `subject` to cosign's `.sig` tag in `ref`'s repository,
// keeping the signatures already there; none when this key signed it already (signing again
// does not grow it). Read back until it holds ours (concurrent signers).
void pushCosignSignatures(registry::Session& session, oci::Store& store, const oci::SigningKey& key,
                          const oci::Reference& ref, const oci::Digest& subject);
// Pushes a `.sig` image as it is (a copy's), under `subject`'s tag in `ref`'s repository.
void copyCosignSignatures(registry::Session& session, oci::Store& store, const oci::Image& sig,
                          const oci::Reference& ref, const oci::Digest& subject);

// One signature found and what checking it with the key gave.
struct SignatureCheck {
    std::string what; // "sigstore bundle sha256:…", "cosign .sig sha256:…, layer 2"
    bool verified = false;
    std::string why; // why not
};

// Checks every Sigstore bundle among `attachments` (in the store) and every layer of a `.sig`
// image against `key` and `subject`.
std::vector<SignatureCheck> checkSignatures(const oci::Store& store, const oci::VerifyKey& key,
                                            const oci::Digest& subject,
                                            const std::vector<oci::Descriptor>& attachments,
                                            const std::optional<oci::Image>& cosignSig);

} // namespace grocker::build
