import { DSSE_ENVELOPE_MEDIA_TYPE } from "./cosign-format.ts";
import { judgeDsseBundle } from "./judge-bundle.ts";
import type { CertificateBudget, Judgement, JudgeOptions } from "./judge-legacy-layer.ts";
import { legacyAttestationBundle } from "./legacy-bundle.ts";
import { quote } from "./quote.ts";
import type { DigestString, LegacyLayerEvidence } from "./types.ts";
import type { Authority } from "./verify-authorities.ts";

/**
 * One layer of a legacy `.att` manifest (cosign-formats.md §1.8): its blob a DSSE envelope of an
 * in-toto statement, its annotations the certificate and Rekor SET as for a `.sig` layer (the
 * signature annotation is empty: the signature is in the envelope). The envelope becomes a bundle
 * and is judged like one (judge-bundle.ts `judgeDsseBundle`: the signer against the authorities, then
 * the statement).
 */
export function judgeLegacyAttestation(
  layer: LegacyLayerEvidence,
  digest: DigestString,
  authorities: readonly Authority[],
  budget: CertificateBudget,
  options: JudgeOptions = {},
): Judgement {
  if (layer.mediaType !== DSSE_ENVELOPE_MEDIA_TYPE) {
    return { result: "not-a-signature", detail: `layer media type ${quote(layer.mediaType)}` };
  }
  if (layer.payload === undefined) {
    return { result: "invalid", detail: "envelope blob not fetched (missing or over the size cap)" };
  }
  const bundle = legacyAttestationBundle(layer.payload, layer.annotations);
  if (typeof bundle === "string") return { result: "invalid", detail: bundle };
  if (bundle.content.$case !== "dsseEnvelope") return { result: "invalid", detail: "not a DSSE envelope" };
  return judgeDsseBundle(
    bundle,
    bundle.content.dsseEnvelope,
    digest,
    authorities,
    undefined,
    budget,
    options,
  );
}
