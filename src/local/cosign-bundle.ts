import { createHash, sign } from "node:crypto";
import { computeDigest, type Digest, MediaType, parseDigest } from "../oci/index.ts";
import {
  BUNDLE_PREDICATE_ANNOTATION,
  BUNDLE_V03_MEDIA_TYPE,
  type BundleEvidence,
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD_TYPE,
  referrersTagSchemaTag,
} from "../verify/index.ts";
import { preAuthEncoding } from "./cosign-attestation.ts";
import type { SigningKey } from "./cosign-signing.ts";
import type { RegistryWriter } from "./registry-push.ts";

/**
 * What `cosign sign` v3 writes with a key: a Sigstore bundle v0.3 holding a DSSE envelope over an in-toto
 * statement, pushed as an OCI 1.1 artifact manifest with `subject` = the image and `artifactType` = the
 * bundle media type, and listed in the referrers tag schema index `sha256-<hex>` (distribution 2.8 has
 * no referrers API).
 */

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1);
}

function publicKeyDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

/** A Sigstore bundle v0.3 signing `digest` (with `subjectDigest`, a statement about another image). */
export function makeBundle(opts: {
  digest: string;
  key: SigningKey;
  predicateType?: string;
  subjectDigest?: string;
  /** The statement's predicate (an attestation's content; `{}` for a signature). */
  predicate?: unknown;
  /** `cosign sign -a k=v` annotations, on the statement's subject. */
  annotations?: Readonly<Record<string, string>>;
}): Buffer {
  const subject = opts.subjectDigest ?? opts.digest;
  const statement = Buffer.from(
    JSON.stringify({
      _type: "https://in-toto.io/Statement/v1",
      subject: [
        {
          digest: { sha256: hexOf(subject) },
          ...(opts.annotations ? { annotations: opts.annotations } : {}),
        },
      ],
      predicateType: opts.predicateType ?? COSIGN_SIGN_PREDICATE,
      predicate: opts.predicate ?? {},
    }),
  );
  const sig = sign("sha256", preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement), opts.key.privateKey).toString(
    "base64",
  );
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_V03_MEDIA_TYPE,
      verificationMaterial: {
        publicKey: {
          hint: createHash("sha256").update(publicKeyDer(opts.key.publicKeyPem)).digest("base64"),
        },
        tlogEntries: [],
      },
      dsseEnvelope: {
        payload: statement.toString("base64"),
        payloadType: IN_TOTO_PAYLOAD_TYPE,
        signatures: [{ sig, keyid: "" }],
      },
    }),
  );
}

/** What pull/ hands verify/ for a bundle found as a v0.3 referrer (its source: the bundle's own digest). */
export function bundleEvidence(bundle: Buffer): BundleEvidence {
  return {
    format: "sigstore-bundle",
    source: computeDigest(bundle),
    artifactType: BUNDLE_V03_MEDIA_TYPE,
    bundle,
  };
}

/** An OCI 1.1 artifact manifest carrying a bundle as the referrer of `subject`. */
export function bundleReferrerManifest(opts: {
  emptyDigest: string;
  bundle: Buffer;
  bundleDigest: string;
  subject: { mediaType: string; size: number; digest: string };
  /** The statement's predicate type, as cosign annotates the referrer (default: a signature). */
  predicateType?: string;
}): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: BUNDLE_V03_MEDIA_TYPE,
      config: { mediaType: MediaType.ociEmpty, size: 2, digest: opts.emptyDigest },
      layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, size: opts.bundle.length, digest: opts.bundleDigest }],
      subject: opts.subject,
      annotations: {
        "dev.sigstore.bundle.content": "dsse-envelope",
        [BUNDLE_PREDICATE_ANNOTATION]: opts.predicateType ?? COSIGN_SIGN_PREDICATE,
      },
    }),
  );
}

/** The referrers tag schema index `sha256-<hex>` with one more referrer appended. */
export function referrersIndexWith(
  existing: Buffer | undefined,
  referrer: Buffer,
  referrerDigest: string,
  /** The descriptor's artifactType; null leaves it out (cosign v3 on GHCR and distribution 2.8). */
  artifactType: string | null = BUNDLE_V03_MEDIA_TYPE,
  /** The referrer's annotations, copied into its index entry as registries do. */
  annotations?: Readonly<Record<string, string>>,
): Buffer {
  const manifests: unknown[] = existing
    ? (JSON.parse(existing.toString()) as { manifests: unknown[] }).manifests
    : [];
  manifests.push({
    mediaType: MediaType.ociManifest,
    size: referrer.length,
    digest: referrerDigest,
    ...(artifactType === null ? {} : { artifactType }),
    ...(annotations ? { annotations } : {}),
  });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
}

/**
 * Attaches a bundle for `digest` as an OCI 1.1 referrer in a real registry and lists it in the referrers
 * tag schema index `<repository>:sha256-<hex>`.
 */
export async function attachBundle(opts: {
  writer: RegistryWriter;
  repository: string;
  digest: string;
  subjectMediaType: string;
  subjectSize: number;
  bundle: Buffer;
  /** The tag-schema index entry's artifactType; null leaves it out, as cosign v3 does on GHCR. */
  descriptorArtifactType?: string | null;
  /** The bundle statement's predicate type (an attestation's), as cosign annotates the referrer. */
  predicateType?: string;
}): Promise<{ referrerDigest: Digest }> {
  const emptyDigest = await opts.writer.pushBlob(opts.repository, Buffer.from("{}"));
  const bundleDigest = await opts.writer.pushBlob(opts.repository, opts.bundle);
  const manifest = bundleReferrerManifest({
    emptyDigest,
    bundle: opts.bundle,
    bundleDigest,
    subject: { mediaType: opts.subjectMediaType, size: opts.subjectSize, digest: opts.digest },
    ...(opts.predicateType ? { predicateType: opts.predicateType } : {}),
  });
  const referrerDigest = computeDigest(manifest);
  await opts.writer.pushManifest(opts.repository, referrerDigest, manifest, MediaType.ociManifest);
  const tag = referrersTagSchemaTag(parseDigest(opts.digest));
  const existing = await opts.writer.getManifest(opts.repository, tag, MediaType.ociIndex);
  await opts.writer.pushManifest(
    opts.repository,
    tag,
    referrersIndexWith(
      existing,
      manifest,
      referrerDigest,
      opts.descriptorArtifactType,
      opts.predicateType ? { [BUNDLE_PREDICATE_ANNOTATION]: opts.predicateType } : undefined,
    ),
    MediaType.ociIndex,
  );
  return { referrerDigest };
}
