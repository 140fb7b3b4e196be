import type { Hono } from "hono";
import { denied, type PullService } from "../pull/index.ts";
import { type AdminEnv, authorize, badRequest, readJson } from "./admin-request.ts";

/**
 * POST /admin/v1/verify: the decision pullgate would make for a reference, with every signature it
 * considered, from a fresh lookup (the verdict cache is neither read nor written).
 */
export function registerDryRun(
  app: Hono<AdminEnv>,
  pull: Pick<PullService, "resolveImage" | "dryRun">,
): void {
  app.post("/admin/v1/verify", async (c) => {
    authorize(c, { action: "read" });
    const body = (await readJson(c)) as { reference?: unknown; upstream?: unknown };
    if (typeof body?.reference !== "string") throw badRequest('body must be {"reference": "proj/app:v1"}');
    const { target, reference } = pull.resolveImage(
      body.reference,
      typeof body.upstream === "string" ? body.upstream : undefined,
    );
    const r = await pull.dryRun({ target, reference, signal: c.req.raw.signal });
    const d = r.decision;
    return c.json({
      reference: body.reference,
      upstream: target.upstream,
      repository: target.repository,
      project: r.policy.project,
      mode: r.policy.mode,
      digest: r.manifest.digest,
      outcome: r.outcome,
      reason:
        d?.outcome === "deny" ? d.reason : d?.outcome === "unavailable" ? "SIGNATURE_UNAVAILABLE" : undefined,
      via: d?.outcome === "allow" ? d.via : undefined,
      detail: d?.outcome === "deny" ? d.detail : undefined,
      // The words a client pulling it now would read in the 403 (from the one place that words them).
      message:
        d?.outcome === "deny"
          ? denied(r.policy.project, target.repository, r.manifest.digest, d.reason, d.detail).message
          : undefined,
      key: d?.outcome === "allow" ? d.key : undefined,
      keyFingerprint: d?.outcome === "allow" ? d.keyFingerprint : undefined,
      signers: d?.outcome === "allow" ? d.signers : undefined,
      unavailable: d?.outcome === "unavailable" ? d.detail : undefined,
      signatures: (d?.signatures ?? []).filter((s) => s.kind !== "attestation"),
      // Every attestation considered: its signer, its type, and what each requirement made of it.
      attestations: (d?.signatures ?? []).filter((s) => s.kind === "attestation"),
    });
  });
}
