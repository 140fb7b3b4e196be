import { createHash } from "node:crypto";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { type TrustMaterial, toTrustMaterial } from "@sigstore/verify";
import { messageOf } from "./failure-words.ts";

/**
 * A Sigstore trusted root (protobuf-specs `TrustedRoot` JSON, as `cosign trusted-root create` writes
 * and TUF distributes): Fulcio CA chains, Rekor log keys, CT log keys, TSAs, each with its validity
 * window. Parsed once into @sigstore/verify's trust material; `sha256` of the exact bytes enters the
 * policy fingerprint, so a changed root makes earlier verdicts unreachable.
 */
export class TrustRoot {
  readonly name: string;
  #sha256: string;
  #material: TrustMaterial;
  #json: string;

  constructor(name: string, sha256: string, material: TrustMaterial, json: string) {
    this.name = name;
    this.#sha256 = sha256;
    this.#material = material;
    this.#json = json;
  }

  get sha256(): string {
    return this.#sha256;
  }
  get material(): TrustMaterial {
    return this.#material;
  }
  /** The root's JSON text (a worker thread parses its own copy: trust material does not cross threads). */
  get json(): string {
    return this.#json;
  }

  /**
   * Takes the content of a newer copy of this root (its file changed): every policy that names it
   * sees the new content, and the policies' fingerprints change once they are rebuilt.
   */
  replaceWith(next: TrustRoot): void {
    this.#sha256 = next.sha256;
    this.#material = next.material;
    this.#json = next.json;
  }
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
  return new TrustRoot(
    name,
    createHash("sha256").update(bytes).digest("hex"),
    material,
    bytes.toString("utf8"),
  );
}
