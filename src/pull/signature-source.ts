import { type Digest, digestMatches, isDigest } from "../oci/index.ts";
import type { RegistryClient, RequestContext } from "../upstream/index.ts";
import type { SignatureEvidence } from "../verify/index.ts";
import type { BlobBudget, BlobBudgetLimits } from "./blob-budget.ts";

/** Blob and manifest fetches in flight per format, per lookup. */
export const PARALLEL_FETCHES = 8;

export interface LookupLimits extends BlobBudgetLimits {
  maxManifestBytes: number;
  maxPayloadBytes: number;
  maxBundleBytes: number;
}

/** Where and how one lookup reads: shared by every format it asks (one blob budget, one request count). */
export interface LookupPlace {
  client: RegistryClient;
  repository: string;
  digest: Digest;
  limits: LookupLimits;
  ctx: RequestContext;
  counter: { requests: number };
  blobs: BlobBudget;
  /** The predicate types of the attestations the policy requires (none: attestations are not looked up). */
  attestationTypes: readonly string[];
}

/** What one format found: its evidence, and whether part of it could not be looked at. */
export interface FormatFindings {
  evidence: SignatureEvidence[];
  unavailable: string | undefined;
}

/**
 * One signature format's discovery: reads what the upstream holds for `place.digest` in that format,
 * size-capped and digest-checked, for verify/ to judge. A new format is one more SignatureSource
 * (and its judge in verify/).
 */
export type SignatureSource = (place: LookupPlace) => Promise<FormatFindings>;

/** True unless the upstream claimed a digest (of a supported algorithm) that the bytes do not have. */
export function matchesClaim(bytes: Uint8Array, claimed: string | undefined): boolean {
  return claimed === undefined || !isDigest(claimed) || digestMatches(bytes, claimed);
}

export function none(): FormatFindings {
  return { evidence: [], unavailable: undefined };
}

export function unavailableOnly(detail: string): FormatFindings {
  return { evidence: [], unavailable: detail };
}
