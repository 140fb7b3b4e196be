import { createHash } from "node:crypto";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { type TrustMaterial, toTrustMaterial } from "@sigstore/verify";

/**
 * A Sigstore trusted root (protobuf-specs `TrustedRoot` JSON, as `cosign trusted-root create` writes
 * and TUF distributes): Fulcio CA chains, Rekor log keys, CT log keys, TSAs, each with its validity
 * window. Parsed once into @sigstore/verify's trust material; `sha256` of the exact bytes enters the
 * policy fingerprint, so a changed root makes earlier verdicts unreachable.
 */
export interface TrustRoot {
  name: string;
  sha256: string;
  material: TrustMaterial;
  /** The root's JSON text (a worker thread parses its own copy: trust material does not cross threads). */
  json: string;
}

export class TrustRootError extends Error {
  readonly code = "TRUST_ROOT_INVALID";
}

export function parseTrustRoot(name: string, json: string | Uint8Array): TrustRoot {
  const bytes = typeof json === "string" ? Buffer.from(json, "utf8") : Buffer.from(json);
  let material: TrustMaterial;
  try {
    material = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(bytes.toString("utf8"))));
  } catch (err) {
    throw new TrustRootError(`trusted root ${name}: not a Sigstore trusted root (${messageOf(err)})`);
  }
  if (material.tlogs.length === 0 && material.certificateAuthorities.length === 0) {
    throw new TrustRootError(`trusted root ${name}: has no transparency log and no certificate authority`);
  }
  return {
    name,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    material,
    json: bytes.toString("utf8"),
  };
}

function messageOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.length > 160 ? `${message.slice(0, 160)}…` : message;
}
