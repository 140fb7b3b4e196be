import { DSSE_ENVELOPE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE } from "./cosign-format.ts";
import { judgeStatement } from "./judge-bundle.ts";
import type { CertificateBudget, Judgement, JudgeOptions } from "./judge-legacy-layer.ts";
import { legacyAttestationBundle } from "./legacy-bundle.ts";
import { quote } from "./quote.ts";
import type { DigestString, LegacyLayerEvidence } from "./types.ts";
import { type Authority, verifyAgainstAuthorities } from "./verify-authorities.ts";

/**
 * One layer of a legacy `.att` manifest (cosign-formats.md §1.8): its blob a DSSE envelope of an
 * in-toto statement, its annotations the certificate and Rekor SET as for a `.sig` layer (the
 * signature annotation is empty: the signature is in the envelope). The envelope becomes a bundle
 * and is verified like one (verify-authorities.ts: a key with its log rule, or a keyless identity
 * against its root); only then is the statement read (judge-bundle.ts `judgeStatement`).
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
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return { result: "invalid", detail: `DSSE payloadType ${quote(envelope.payloadType)}` };
  }
  if (bundle.verificationMaterial.content.$case !== "publicKey") {
    if (budget.remaining <= 0)
      return { result: "not-considered", detail: "over the cap of keyless verifications for one decision" };
    budget.remaining -= 1;
  }
  const r = verifyAgainstAuthorities(bundle, undefined, authorities, options.now);
  if (!r.ok)
    return {
      result: "untrusted",
      detail: r.detail,
      ...(r.certificate ? { certificate: r.certificate } : {}),
    };
  return judgeStatement(envelope.payload, digest, r, undefined, options);
}
