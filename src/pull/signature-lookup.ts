import type { Digest } from "../oci/index.ts";
import { SPAN_ATTR, withSpan } from "../telemetry/index.ts";
import type { RegistryClient, RequestContext } from "../upstream/index.ts";
import type { SignatureEvidence } from "../verify/index.ts";
import { BlobBudget } from "./blob-budget.ts";
import { bundleSignatures } from "./bundle-signatures.ts";
import { legacyAttestations } from "./legacy-attestations.ts";
import { legacySignatures } from "./legacy-signatures.ts";
import type { FormatFindings, LookupLimits, SignatureSource } from "./signature-source.ts";

export type { LookupLimits } from "./signature-source.ts";

/** Every signature format pullgate discovers, asked at once: a new format is one more entry. */
export const SIGNATURE_SOURCES: readonly SignatureSource[] = [
  legacySignatures,
  bundleSignatures,
  legacyAttestations,
];

export interface SignatureLookup {
  evidence: SignatureEvidence[];
  /** Set when part of the lookup could not be done (upstream 401/403/429/5xx, timeout, unreachable). */
  unavailable: string | undefined;
  /** Upstream requests made (cold-pull round trips). */
  requests: number;
}

/**
 * Gathers every candidate signature for `digest` in `repository` on the upstream, in every format
 * at once (cosign's legacy `sha256-<hex>.sig` tag; Sigstore bundles as OCI 1.1 referrers). They
 * share one blob budget. Everything fetched is size-capped and digest-checked before verify/ sees
 * it. "Not found" is an empty answer; "could not look" is reported separately and never confused
 * with "unsigned".
 */
export async function lookupSignatures(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  limits: LookupLimits,
  ctx: RequestContext,
  /** Stop early: a format whose evidence satisfies this ends the lookup without waiting for the others. */
  enough?: (evidence: readonly SignatureEvidence[]) => boolean | Promise<boolean>,
  sources: readonly SignatureSource[] = SIGNATURE_SOURCES,
  /** Predicate types of the attestations the policy requires: only then are attestations looked up. */
  attestationTypes: readonly string[] = [],
): Promise<SignatureLookup> {
  const attributes = {
    [SPAN_ATTR.repository]: repository,
    [SPAN_ATTR.digest]: digest,
    [SPAN_ATTR.upstream]: client.config.name,
  };
  return withSpan("pullgate.signature.lookup", attributes, async (span) => {
    const lookup = await lookupAll(
      client,
      repository,
      digest,
      limits,
      ctx,
      enough,
      sources,
      attestationTypes,
    );
    span.setAttributes({
      "pullgate.signature.evidence": lookup.evidence.length,
      "pullgate.signature.requests": lookup.requests,
      "pullgate.signature.unavailable": lookup.unavailable !== undefined,
    });
    return lookup;
  });
}

async function lookupAll(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  limits: LookupLimits,
  ctx: RequestContext,
  enough: ((evidence: readonly SignatureEvidence[]) => boolean | Promise<boolean>) | undefined,
  sources: readonly SignatureSource[],
  attestationTypes: readonly string[],
): Promise<SignatureLookup> {
  const counter = { requests: 0 };
  // pullgate's own requests: the lookup pool, never a client's manifest request's connections.
  const lookupCtx: RequestContext = { ...ctx, lookup: true };
  const place = {
    client,
    repository,
    digest,
    limits,
    ctx: lookupCtx,
    counter,
    blobs: new BlobBudget(client, limits, lookupCtx, counter),
    attestationTypes,
  };
  const parts = sources.map((source) => source(place));
  if (enough) {
    // A signature that verifies in one format admits the image however slow or broken the other
    // formats' lookups are: a slow failure must not deny what a fast one lets through.
    const first = await firstSatisfying(parts, (part) => enough(part.evidence));
    if (first) return { evidence: first.evidence, unavailable: undefined, requests: counter.requests };
  }
  const all = await Promise.all(parts);
  const unavailable =
    all
      .map((p) => p.unavailable)
      .filter(Boolean)
      .join("; ") || undefined;
  return { evidence: all.flatMap((p) => p.evidence), unavailable, requests: counter.requests };
}

/**
 * The first part, in order of completion, that satisfies `test` (which may be async: a judgement in
 * a worker); undefined once all have finished without one. A part that rejects leaves the others to decide; its rejection is seen by the caller's
 * Promise.all.
 */
function firstSatisfying(
  parts: readonly Promise<FormatFindings>[],
  test: (part: FormatFindings) => boolean | Promise<boolean>,
): Promise<FormatFindings | undefined> {
  return new Promise((resolve) => {
    let pending = parts.length;
    const settle = () => {
      pending -= 1;
      if (pending === 0) resolve(undefined);
    };
    for (const part of parts) {
      // A test that throws or rejects (a worker's deadline) satisfies nothing.
      part.then(async (p) => ((await test(p)) ? resolve(p) : settle())).catch(settle);
    }
  });
}
