import {
  COSIGN_SIGNATURE_ANNOTATION,
  MAX_BUNDLES,
  MAX_LEGACY_LAYERS,
  MAX_SIGNATURE_CHECKS,
} from "./cosign-format.ts";
import { judgeBundle } from "./judge-bundle.ts";
import { type Judgement, judgeLegacyLayer } from "./judge-legacy-layer.ts";
import type { PulledRepository } from "./signed-repository.ts";
import type {
  DenyReason,
  DigestString,
  SignatureEvidence,
  SignatureReport,
  TrustedKey,
  Verdict,
} from "./types.ts";

/**
 * The pure decision for one manifest digest: does some candidate signature, by one of `keys`, sign
 * exactly `digest`? Every candidate gets a report (capped: MAX_LEGACY_LAYERS legacy layers and
 * MAX_BUNDLES bundles are judged; the rest are summed up in "not-considered" reports).
 * - verified: the first verified candidate (in evidence order) names the key and format.
 * - denied DIGEST_MISMATCH: a trusted key signed some candidate, but for another digest.
 * - denied UNTRUSTED_SIGNATURE: signature-shaped candidates, none by a trusted key (or malformed).
 * - denied NO_SIGNATURE: nothing that is an image signature (no evidence, other artifacts, attestations).
 */
export function judgeSignatures(input: {
  digest: DigestString;
  keys: readonly TrustedKey[];
  evidence: readonly SignatureEvidence[];
  /** matchRepository: the signature must also name the repository the image is pulled from. */
  repository?: PulledRepository | undefined;
}): Verdict {
  const { digest, keys } = input;
  const reports: SignatureReport[] = [];
  let legacyLayers = 0;
  let bundles = 0;
  const skippedBundles: string[] = [];
  // CPU bound: every candidate costs one check per trusted key; identical layers (same payload and
  // signature, as in a `.sig` manifest repeating one layer) are judged once.
  let checks = 0;
  const perCandidate = Math.max(1, keys.length);
  const judged = new Map<string, Judgement>();

  for (const evidence of input.evidence) {
    switch (evidence.format) {
      case "cosign-legacy": {
        let skipped = 0;
        for (const layer of evidence.layers) {
          const memoKey = `${layer.mediaType}\u0000${layer.digest}\u0000${layer.annotations[COSIGN_SIGNATURE_ANNOTATION] ?? ""}`;
          let judgement = judged.get(memoKey);
          if (judgement === undefined) {
            if (legacyLayers >= MAX_LEGACY_LAYERS || checks + perCandidate > MAX_SIGNATURE_CHECKS) {
              skipped += 1;
              continue;
            }
            legacyLayers += 1;
            checks += perCandidate;
            judgement = judgeLegacyLayer(layer, digest, keys, input.repository);
            judged.set(memoKey, judgement);
          }
          reports.push(toReport("cosign-legacy", evidence.source, judgement, layer.digest));
        }
        if (skipped > 0) {
          reports.push({
            format: "cosign-legacy",
            source: evidence.source,
            result: "not-considered",
            detail: `${skipped} layer(s) over the caps (${MAX_LEGACY_LAYERS} legacy layers, ${MAX_SIGNATURE_CHECKS} signature checks) not considered`,
          });
        }
        break;
      }
      case "sigstore-bundle": {
        if (bundles >= MAX_BUNDLES || checks + perCandidate > MAX_SIGNATURE_CHECKS) {
          skippedBundles.push(evidence.source);
          break;
        }
        bundles += 1;
        checks += perCandidate;
        reports.push(
          toReport("sigstore-bundle", evidence.source, judgeBundle(evidence, digest, keys, input.repository)),
        );
        break;
      }
      default:
        return unreachable(evidence);
    }
  }
  const [firstSkipped] = skippedBundles;
  if (firstSkipped !== undefined) {
    reports.push({
      format: "sigstore-bundle",
      source: firstSkipped,
      result: "not-considered",
      detail: `${skippedBundles.length} bundle(s) over the cap of ${MAX_BUNDLES} not considered, from this one on`,
    });
  }
  return toVerdict(digest, reports);
}

function toReport(
  format: SignatureReport["format"],
  source: DigestString,
  judgement: Judgement,
  payloadDigest?: DigestString,
): SignatureReport {
  const report: SignatureReport = { format, source, result: judgement.result };
  if (payloadDigest !== undefined) report.payloadDigest = payloadDigest;
  if (judgement.key !== undefined) {
    report.key = judgement.key.name;
    report.keyFingerprint = judgement.key.fingerprint;
  }
  if (judgement.detail !== undefined) report.detail = judgement.detail;
  return report;
}

function toVerdict(digest: DigestString, signatures: readonly SignatureReport[]): Verdict {
  let reason: DenyReason = "NO_SIGNATURE";
  for (const report of signatures) {
    switch (report.result) {
      case "verified":
        return {
          status: "verified",
          digest,
          format: report.format,
          key: report.key ?? "",
          keyFingerprint: report.keyFingerprint ?? "",
          signatures,
        };
      case "digest-mismatch":
        reason = "DIGEST_MISMATCH";
        break;
      case "repository-mismatch":
        if (reason !== "DIGEST_MISMATCH") reason = "REPOSITORY_MISMATCH";
        break;
      case "untrusted":
      case "invalid":
        if (reason === "NO_SIGNATURE") reason = "UNTRUSTED_SIGNATURE";
        break;
      case "not-a-signature":
      case "not-considered":
        break;
      default:
        return unreachable(report.result);
    }
  }
  return { status: "denied", digest, reason, signatures };
}

function unreachable(value: never): never {
  throw new Error(`unhandled value ${JSON.stringify(value)}`);
}
