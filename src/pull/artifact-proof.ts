import type { Digest } from "../oci/index.ts";
import type { RequestContext, Route } from "../upstream/index.ts";
import { type ArtifactClaim, checkArtifactBlob } from "../verify/index.ts";
import { BlobBudget } from "./blob-budget.ts";
import type { LookupLimits } from "./signature-lookup.ts";

export type ArtifactProof =
  | { outcome: "proven" }
  | { outcome: "not-proven"; detail: string }
  | { outcome: "unavailable"; detail: string };

/** Cap on an image config blob of a signature artifact (cosign's placeholder is ~250 bytes). */
const MAX_CONFIG_BYTES = 64 * 1024;
const PARALLEL_FETCHES = 4;

/**
 * Step 3 of verify/signature-artifact.ts: fetches every blob the claimed signature artifact lists
 * (once each, within the lookup budget) and has verify/ check each is the inert JSON document its
 * media type names. One failure is enough to stop: the manifest then needs a signature of its own.
 */
export async function proveSignatureArtifact(
  route: Route,
  claim: ArtifactClaim,
  limits: LookupLimits,
  ctx: RequestContext,
): Promise<ArtifactProof> {
  if (claim.blobs.length > limits.maxBlobs) {
    return { outcome: "not-proven", detail: `it lists more than ${limits.maxBlobs} blobs` };
  }
  const budget = new BlobBudget(route.client, limits, { ...ctx, lookup: true }, { requests: 0 });
  let next = 0;
  let result: ArtifactProof = { outcome: "proven" };
  const worker = async () => {
    while (next < claim.blobs.length && result.outcome === "proven") {
      const blob = claim.blobs[next++] as ArtifactClaim["blobs"][number];
      const maxBytes =
        blob.kind === "simplesigning"
          ? limits.maxPayloadBytes
          : blob.kind === "image-config"
            ? MAX_CONFIG_BYTES
            : limits.maxBundleBytes;
      const fetched = await budget.fetch(route.name, blob.digest as Digest, maxBytes);
      if (result.outcome !== "proven") return;
      if (!fetched.ok) {
        result =
          fetched.outcome === "unavailable"
            ? { outcome: "unavailable", detail: `${blob.digest}: ${fetched.detail}` }
            : { outcome: "not-proven", detail: `${blob.digest}: ${fetched.outcome}` };
        return;
      }
      const problem = checkArtifactBlob(blob.kind, fetched.value);
      if (problem !== undefined) result = { outcome: "not-proven", detail: `${blob.digest}: ${problem}` };
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_FETCHES, claim.blobs.length) }, worker));
  return result;
}
