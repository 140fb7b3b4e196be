import {
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_REKOR_BUNDLE_ANNOTATION,
  COSIGN_RFC3161_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
  MAX_ATTESTATION_LAYERS,
  MAX_BUNDLES,
  MAX_KEYLESS_CHECKS,
  MAX_LEGACY_LAYERS,
  MAX_SIGNATURE_CHECKS,
} from "./cosign-format.ts";
import { judgeBundle } from "./judge-bundle.ts";
import { judgeLegacyAttestation } from "./judge-legacy-attestation.ts";
import { type Judgement, type JudgeOptions, judgeLegacyLayer } from "./judge-legacy-layer.ts";
import {
  attestationProblem,
  NO_REQUIREMENTS,
  type Requirements,
  signerProblem,
  type VerifiedAttestation,
} from "./policy-requirements.ts";
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
  /** Threshold, required signers, annotations, attestations (default: one trusted signer). */
  requirements?: Requirements | undefined;
  /** Epoch ms of the judging, for key validity windows (verify/ reads no clock). */
  now?: number | undefined;
}): Verdict {
  const { digest, authorities } = input;
  const requirements = input.requirements ?? NO_REQUIREMENTS;
  const options: JudgeOptions = { annotations: requirements.spec.annotations, now: input.now };
  const reports: SignatureReport[] = [];
  const attestations: VerifiedAttestation[] = [];
  let legacyLayers = 0;
  let attestationLayers = 0;
  let bundles = 0;
  const skippedBundles: string[] = [];
  // CPU bound: every candidate costs one check per trusted key; identical layers (same payload and
  // signature, as in a `.sig` manifest repeating one layer) are judged once.
  let checks = 0;
  const perCandidate = Math.max(1, authorities.length);
  // Keyless verifications cost ~7 ms of CPU each: a hostile `.sig` of forged certificates gets a few,
  // and attestations have a budget of their own (they cannot starve the signatures).
  const certificates = { remaining: MAX_KEYLESS_CHECKS };
  const attestationCertificates = { remaining: MAX_KEYLESS_CHECKS };
  const judged = new Map<string, Judgement>();
  const record = (report: SignatureReport, judgement: Judgement) => {
    reports.push(report);
    if (judgement.attestation !== undefined && judgement.result === "verified")
      attestations.push({ report, statement: judgement.attestation });
  };

  for (const evidence of input.evidence) {
    switch (evidence.format) {
      case "cosign-legacy":
      case "cosign-legacy-attestation": {
        const attesting = evidence.format === "cosign-legacy-attestation";
        const cap = attesting ? MAX_ATTESTATION_LAYERS : MAX_LEGACY_LAYERS;
        let skipped = 0;
        for (const layer of evidence.layers) {
          const memoKey = [
            evidence.format,
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
          let first = false;
          if (judgement === undefined) {
            const count = attesting ? attestationLayers : legacyLayers;
            if (count >= cap || checks + perCandidate > MAX_SIGNATURE_CHECKS) {
              skipped += 1;
              continue;
            }
            if (attesting) attestationLayers += 1;
            else legacyLayers += 1;
            checks += perCandidate;
            judgement = attesting
              ? judgeLegacyAttestation(layer, digest, authorities, attestationCertificates, options)
              : judgeLegacyLayer(layer, digest, authorities, input.repository, certificates, options);
            judged.set(memoKey, judgement);
            first = true;
          }
          const report = toReport(evidence.format, evidence.source, judgement, layer.digest);
          // A repeated attestation layer is one attestation.
          if (first) record(report, judgement);
          else reports.push(report);
        }
        if (skipped > 0) {
          reports.push({
            format: evidence.format,
            source: evidence.source,
            result: "not-considered",
            detail: `${skipped} layer(s) over the caps (${cap} layers, ${MAX_SIGNATURE_CHECKS} signature checks) not considered`,
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
        // Bundles, attestations among them, share the signatures' keyless budget: what a bundle holds
        // is read only after its signer is verified (pull/ fetches attestation bundles only when the
        // policy requires some, after the signature bundles).
        const judgement = judgeBundle(evidence, digest, authorities, input.repository, certificates, options);
        record(toReport("sigstore-bundle", evidence.source, judgement), judgement);
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
  return toVerdict(digest, reports, requirements, attestations);
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
  if (judgement.attestation !== undefined) {
    report.kind = "attestation";
    report.predicateType = judgement.attestation.predicateType;
  }
  if (judgement.detail !== undefined) report.detail = judgement.detail;
  return report;
}

/**
 * The verdict: the signatures first (who counted; else why nothing did), then the signer
 * requirements, then every required attestation. Attestation reports never count as signatures.
 */
function toVerdict(
  digest: DigestString,
  signatures: readonly SignatureReport[],
  requirements: Requirements,
  attestations: readonly VerifiedAttestation[],
): Verdict {
  let reason: DenyReason = "NO_SIGNATURE";
  let because: SignatureReport | undefined;
  const counted: SignatureReport[] = [];
  for (const report of signatures) {
    if (report.kind === "attestation") continue;
    switch (report.result) {
      case "verified":
        counted.push(report);
        break;
      case "digest-mismatch":
        if (reason !== "DIGEST_MISMATCH") because = report;
        reason = "DIGEST_MISMATCH";
        break;
      case "repository-mismatch":
        if (reason !== "DIGEST_MISMATCH" && reason !== "REPOSITORY_MISMATCH") because = report;
        if (reason !== "DIGEST_MISMATCH") reason = "REPOSITORY_MISMATCH";
        break;
      case "annotation-mismatch":
        // A signer the project trusts, without the annotations: the most telling untrusted case.
        if (
          reason === "NO_SIGNATURE" ||
          (reason === "UNTRUSTED_SIGNATURE" && because?.result !== report.result)
        ) {
          reason = "UNTRUSTED_SIGNATURE";
          because = report;
        }
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
  const [first] = counted;
  if (first === undefined) return denied(digest, reason, because?.detail, signatures);
  const signers = [...new Set(counted.map((r) => r.key ?? ""))];
  const bySigners = signerProblem(requirements.spec, signers);
  if (!bySigners.ok) return denied(digest, bySigners.reason, bySigners.detail, signatures);
  const byAttestations = attestationProblem(requirements, attestations);
  if (!byAttestations.ok) return denied(digest, byAttestations.reason, byAttestations.detail, signatures);
  return {
    status: "verified",
    digest,
    format: first.format,
    key: first.key ?? "",
    ...(first.keyFingerprint !== undefined ? { keyFingerprint: first.keyFingerprint } : {}),
    signers,
    signatures,
  };
}

function denied(
  digest: DigestString,
  reason: DenyReason,
  why: string | undefined,
  signatures: readonly SignatureReport[],
): Verdict {
  const detail = why?.slice(0, 400);
  return detail
    ? { status: "denied", digest, reason, detail, signatures }
    : { status: "denied", digest, reason, signatures };
}

function unreachable(value: never): never {
  throw new Error(`unhandled value ${JSON.stringify(value)}`);
}
