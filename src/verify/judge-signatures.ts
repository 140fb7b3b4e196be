import {
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_REKOR_BUNDLE_ANNOTATION,
  COSIGN_RFC3161_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
  MAX_BUNDLES,
  MAX_KEYLESS_CHECKS,
  MAX_LEGACY_LAYERS,
  MAX_SIGNATURE_CHECKS,
} from "./cosign-format.ts";
import { judgeBundle } from "./judge-bundle.ts";
import { type Judgement, judgeLegacyLayer } from "./judge-legacy-layer.ts";
import type { PulledRepository } from "./signed-repository.ts";
import type { DenyReason, DigestString, SignatureEvidence, SignatureReport, Verdict } from "./types.ts";
import type { Authority } from "./verify-authorities.ts";

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
  /** The keys (with their log rules) and keyless identities the project trusts, each with its root. */
  authorities: readonly Authority[];
  evidence: readonly SignatureEvidence[];
  /** matchRepository: the signature must also name the repository the image is pulled from. */
  repository?: PulledRepository | undefined;
}): Verdict {
  const { digest, authorities } = input;
  const reports: SignatureReport[] = [];
  let legacyLayers = 0;
  let bundles = 0;
  const skippedBundles: string[] = [];
  // CPU bound: every candidate costs one check per trusted key; identical layers (same payload and
  // signature, as in a `.sig` manifest repeating one layer) are judged once.
  let checks = 0;
  const perCandidate = Math.max(1, authorities.length);
  // Keyless verifications cost ~7 ms of CPU each: a hostile `.sig` of forged certificates gets a few.
  const certificates = { remaining: MAX_KEYLESS_CHECKS };
  const judged = new Map<string, Judgement>();

  for (const evidence of input.evidence) {
    switch (evidence.format) {
      case "cosign-legacy": {
        let skipped = 0;
        for (const layer of evidence.layers) {
          const memoKey = [
            layer.mediaType,
            layer.digest,
            ...[
              COSIGN_SIGNATURE_ANNOTATION,
              COSIGN_CERTIFICATE_ANNOTATION,
              COSIGN_REKOR_BUNDLE_ANNOTATION,
              COSIGN_RFC3161_ANNOTATION,
            ].map((a) => layer.annotations[a] ?? ""),
          ].join("\u0000");
          let judgement = judged.get(memoKey);
          if (judgement === undefined) {
            if (legacyLayers >= MAX_LEGACY_LAYERS || checks + perCandidate > MAX_SIGNATURE_CHECKS) {
              skipped += 1;
              continue;
            }
            legacyLayers += 1;
            checks += perCandidate;
            judgement = judgeLegacyLayer(layer, digest, authorities, input.repository, certificates);
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
          toReport(
            "sigstore-bundle",
            evidence.source,
            judgeBundle(evidence, digest, authorities, input.repository, certificates),
          ),
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
  const authority = judgement.authority;
  if (authority !== undefined) {
    report.key = authority.name;
    if (authority.kind === "key") report.keyFingerprint = authority.key.fingerprint;
  }
  if (judgement.certificate !== undefined) {
    report.subject = judgement.certificate.subjects[0];
    report.issuer = judgement.certificate.issuer;
  }
  if (judgement.logEntry !== undefined) report.logEntry = judgement.logEntry;
  if (judgement.detail !== undefined) report.detail = judgement.detail;
  return report;
}

function toVerdict(digest: DigestString, signatures: readonly SignatureReport[]): Verdict {
  let reason: DenyReason = "NO_SIGNATURE";
  let because: SignatureReport | undefined;
  for (const report of signatures) {
    switch (report.result) {
      case "verified":
        return {
          status: "verified",
          digest,
          format: report.format,
          key: report.key ?? "",
          ...(report.keyFingerprint !== undefined ? { keyFingerprint: report.keyFingerprint } : {}),
          signatures,
        };
      case "digest-mismatch":
        if (reason !== "DIGEST_MISMATCH") because = report;
        reason = "DIGEST_MISMATCH";
        break;
      case "repository-mismatch":
        if (reason !== "DIGEST_MISMATCH" && reason !== "REPOSITORY_MISMATCH") because = report;
        if (reason !== "DIGEST_MISMATCH") reason = "REPOSITORY_MISMATCH";
        break;
      case "untrusted":
      case "invalid":
        if (reason === "NO_SIGNATURE") {
          reason = "UNTRUSTED_SIGNATURE";
          because = report;
        }
        break;
      case "not-a-signature":
      case "not-considered":
        break;
      default:
        return unreachable(report.result);
    }
  }
  const detail = because?.detail?.slice(0, 400);
  return detail
    ? { status: "denied", digest, reason, detail, signatures }
    : { status: "denied", digest, reason, signatures };
}

function unreachable(value: never): never {
  throw new Error(`unhandled value ${JSON.stringify(value)}`);
}
