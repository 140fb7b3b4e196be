// Test-only helpers: read the real vectors under test/vectors (a verbatim copy, provenance in SOURCES.md).
import { createHash, createPublicKey } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type LegacyLayerEvidence,
  type LegacySignatureEvidence,
  parseTrustedKey,
  type TrustedKey,
} from "../../src/verify/index.ts";

export const VECTORS = join(import.meta.dirname, "../vectors");
export const FIXTURES = "containers-image/signature/fixtures";
export const CONFORMANCE = "sigstore-conformance/test/assets/bundle-verify";
export const COSIGN_KEYS = "sigstore-cosign/extracted-from-pkg-cosign-keys_test.go";
export const PGI_ROOT = "sigstore-cosign/pkg/cosign/testdata/trusted_root_pgi.json";
export const ATTESTATION_BUNDLE = "sigstore-cosign/pkg/cosign/testdata/oci-attestation.sigstore.json";

export function vectorBytes(path: string): Buffer {
  return readFileSync(join(VECTORS, path));
}

export function vectorText(path: string): string {
  return vectorBytes(path).toString("utf8");
}

export function vectorDir(path: string): string[] {
  return readdirSync(join(VECTORS, path));
}

export function vectorSubdirs(path: string): string[] {
  return readdirSync(join(VECTORS, path), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function vectorKey(path: string, name = path.split("/").pop() ?? path): TrustedKey {
  return parseTrustedKey({ name, pem: vectorText(path) });
}

/** The public half of a private-key PEM vector, as SPKI PEM. */
export function publicPemOf(privatePem: string): string {
  return createPublicKey(privatePem).export({ type: "spki", format: "pem" }).toString();
}

const SIGSTORE_JSON_PREFIX = "\0sigstore-json\n";

/** One containers/image `signature-N` file: a `.sig` layer (media type, payload blob, annotations). */
export interface DirSignature {
  mimeType: string;
  payload: Buffer;
  annotations: Record<string, string>;
}

export function readDirSignature(path: string): DirSignature {
  const text = vectorText(path);
  if (!text.startsWith(SIGSTORE_JSON_PREFIX)) throw new Error(`${path}: not a sigstore-json signature`);
  const parsed = JSON.parse(text.slice(SIGSTORE_JSON_PREFIX.length)) as {
    mimeType: string;
    payload: string;
    annotations: Record<string, string>;
  };
  return {
    mimeType: parsed.mimeType,
    payload: Buffer.from(parsed.payload, "base64"),
    annotations: parsed.annotations,
  };
}

export function toLayer(signature: DirSignature): LegacyLayerEvidence {
  return {
    mediaType: signature.mimeType,
    digest: sha256Digest(signature.payload),
    annotations: signature.annotations,
    payload: signature.payload,
  };
}

/** A containers/image fixture case → the evidence a `.sig` manifest with its signature-N layers gives. */
export function fixtureCase(name: string): {
  digest: string | undefined;
  signatures: DirSignature[];
  evidence: LegacySignatureEvidence;
} {
  const dir = `${FIXTURES}/${name}`;
  const files = vectorDir(dir);
  const signatures = files
    .filter((file) => /^signature-\d+$/.test(file))
    .sort()
    .map((file) => readDirSignature(`${dir}/${file}`));
  const digest = files.includes("manifest.json")
    ? sha256Digest(vectorBytes(`${dir}/manifest.json`))
    : undefined;
  return {
    digest,
    signatures,
    evidence: {
      format: "cosign-legacy",
      source: sha256Digest(Buffer.from(`${name}.sig`)),
      layers: signatures.map(toLayer),
    },
  };
}
