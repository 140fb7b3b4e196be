import { type CompiledCondition, compileCondition, evaluateCondition } from "./attestation-condition.ts";
import type { InTotoStatement } from "./in-toto-statement.ts";
import { quote } from "./quote.ts";
import type { AttestationCheck, DenyReason, SignatureEvidence, SignatureReport } from "./types.ts";

/** One required attestation, as written in a policy. */
export interface AttestationRequirementSpec {
  name: string;
  predicateType: string;
  /** Names of the policy's keys or keyless identities allowed to make it (default: any of them). */
  signers?: readonly string[] | undefined;
  /** A CEL expression over the statement (`predicate`, `predicateType`, `subject`) that must be true. */
  condition?: string | undefined;
}

/** What a policy asks beyond "one trusted signer": plain data (it crosses to worker threads). */
export interface RequirementsSpec {
  /** Distinct signers (by name) whose signatures must count. */
  threshold: number;
  /** Signer names that must each be among them. */
  requiredSigners: readonly string[];
  /** `cosign sign -a`: annotations every counted signature must carry. */
  annotations: Readonly<Record<string, string>>;
  attestations: readonly AttestationRequirementSpec[];
}

export interface AttestationRequirement extends AttestationRequirementSpec {
  compiled: CompiledCondition | undefined;
}

/** A RequirementsSpec with its conditions compiled (once, when the policy is built). */
export interface Requirements {
  spec: RequirementsSpec;
  attestations: readonly AttestationRequirement[];
}

export const NO_REQUIREMENTS: Requirements = {
  spec: { threshold: 1, requiredSigners: [], annotations: {}, attestations: [] },
  attestations: [],
};

/**
 * Compiles the conditions; problems (a condition that does not compile) are returned by where they
 * are (`attestations[i].condition: …`), and the requirements are only usable without problems.
 */
export function compileRequirements(spec: RequirementsSpec): Requirements | { problems: string[] } {
  const problems: string[] = [];
  const attestations = spec.attestations.map((a, i) => {
    if (a.condition === undefined) return { ...a, compiled: undefined };
    const compiled = compileCondition(a.condition);
    if ("problem" in compiled) {
      problems.push(`attestations[${i}].condition: ${compiled.problem.replace(/^condition: /, "")}`);
      return { ...a, compiled: undefined };
    }
    return { ...a, compiled };
  });
  return problems.length > 0 ? { problems } : { spec, attestations };
}

/** A verified attestation: its report (checks are added to it) and its statement. */
export interface VerifiedAttestation {
  report: SignatureReport;
  statement: InTotoStatement;
}

export type RequirementsOutcome = { ok: true } | { ok: false; reason: DenyReason; detail: string };

/**
 * The signer requirements: at least `threshold` distinct counted signers, every required one among
 * them. `signers`: the names of the counted signatures, in order.
 */
export function signerProblem(spec: RequirementsSpec, signers: readonly string[]): RequirementsOutcome {
  const distinct = [...new Set(signers)];
  const missing = spec.requiredSigners.filter((n) => !distinct.includes(n));
  if (distinct.length >= spec.threshold && missing.length === 0) return { ok: true };
  const who = `signed by ${distinct.join(", ")}`;
  const parts = [];
  if (distinct.length < spec.threshold)
    parts.push(`${distinct.length} of the ${spec.threshold} distinct signers the project requires`);
  if (missing.length > 0) parts.push(`missing required signer(s): ${missing.join(", ")}`);
  return { ok: false, reason: "NOT_ENOUGH_SIGNERS", detail: `${who}: ${parts.join("; ")}` };
}

/**
 * Every required attestation must be met by at least one verified attestation of its predicateType,
 * by a signer allowed for it, whose condition is true. Each verified attestation's report gets a
 * check per requirement of its type. The first requirement not met decides: MISSING_ATTESTATION
 * (none of its type by an allowed signer), else ATTESTATION_REJECTED (found, condition false or
 * failing).
 */
export function attestationProblem(
  requirements: Requirements,
  verified: readonly VerifiedAttestation[],
): RequirementsOutcome {
  const checks = new Map<SignatureReport, AttestationCheck[]>();
  let first: RequirementsOutcome | undefined;
  for (const requirement of requirements.attestations) {
    const ofType = verified.filter((v) => v.statement.predicateType === requirement.predicateType);
    let met = false;
    let rejected: string | undefined;
    let notAllowed: string | undefined;
    for (const candidate of ofType) {
      const check = checkOne(requirement, candidate);
      const list = checks.get(candidate.report) ?? [];
      list.push(check);
      checks.set(candidate.report, list);
      if (check.result === "met") met = true;
      else if (check.result === "rejected") rejected ??= check.detail;
      else notAllowed ??= candidate.report.key;
    }
    if (met || first !== undefined) continue;
    if (rejected !== undefined) {
      first = {
        ok: false,
        reason: "ATTESTATION_REJECTED",
        detail: `attestation ${requirement.name} (${requirement.predicateType}) ${rejected}`,
      };
    } else {
      const allowed = requirement.signers ? ` signed by ${requirement.signers.join(" or ")}` : "";
      const found = notAllowed !== undefined ? `; found one signed by ${notAllowed}, not allowed for it` : "";
      first = {
        ok: false,
        reason: "MISSING_ATTESTATION",
        detail: `attestation ${requirement.name}: no verified ${requirement.predicateType} attestation${allowed}${found}`,
      };
    }
  }
  for (const [report, list] of checks) report.requirements = list;
  return first ?? { ok: true };
}

function checkOne(requirement: AttestationRequirement, candidate: VerifiedAttestation): AttestationCheck {
  const signer = candidate.report.key ?? "";
  if (requirement.signers !== undefined && !requirement.signers.includes(signer))
    return {
      attestation: requirement.name,
      result: "signer-not-allowed",
      detail: `signed by ${signer}; allowed: ${requirement.signers.join(", ")}`,
    };
  if (requirement.compiled === undefined) return { attestation: requirement.name, result: "met" };
  const outcome = evaluateCondition(requirement.compiled, {
    predicateType: candidate.statement.predicateType,
    predicate: candidate.statement.predicate,
    subject: candidate.statement.subjects,
  });
  if (outcome.ok && outcome.value) return { attestation: requirement.name, result: "met" };
  const condition = quote(requirement.condition ?? "", 200);
  return {
    attestation: requirement.name,
    result: "rejected",
    detail: outcome.ok
      ? `signed by ${signer}: condition ${condition} is false`
      : `signed by ${signer}: condition ${condition} failed: ${outcome.problem}`,
  };
}

/**
 * Can `evidence` alone possibly meet the requirements? A cheap count, before any cryptography: the
 * signature candidates must reach the threshold, each required predicate type needs a candidate of
 * its own, and a bundle (a signature or an attestation: only its verified statement says which)
 * counts once. The early admit of one format's evidence asks this first, so a `.att` alone (no
 * signature) or a `.sig` alone under an attestation policy is not judged, and the keyless proofs in
 * it are not verified twice.
 */
export function mayMeetRequirements(
  evidence: readonly SignatureEvidence[],
  requirements: Requirements,
): boolean {
  let signatures = 0;
  let attestations = 0;
  let bundles = 0;
  for (const e of evidence) {
    switch (e.format) {
      case "cosign-legacy":
        signatures += e.layers.length;
        break;
      case "cosign-legacy-attestation":
        attestations += e.layers.length;
        break;
      case "sigstore-bundle":
        bundles += 1;
        break;
    }
  }
  const threshold = requirements.spec.threshold;
  const types = new Set(requirements.attestations.map((a) => a.predicateType)).size;
  return (
    signatures + bundles >= threshold &&
    attestations + bundles >= types &&
    signatures + attestations + bundles >= threshold + types
  );
}
