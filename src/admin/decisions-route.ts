import type { Hono } from "hono";
import { AUDIT_OUTCOMES, isAuditOutcome, type RecentDecisions } from "../telemetry/index.ts";
import { type AdminEnv, authorize, badRequest } from "./admin-request.ts";

/** GET /admin/v1/decisions answers at most this many (the default when no limit is given: 100). */
export const MAX_DECISIONS_LIMIT = 1_000;
const DEFAULT_LIMIT = 100;
/** A project or repository filter longer than this matches nothing anyway. */
const MAX_FILTER_CHARS = 512;

/**
 * GET /admin/v1/decisions?project=&outcome=&repository=&limit=: this process's latest manifest
 * decisions (the in-memory ring), newest first, each filter an exact match. Role `read`. Another
 * replica's decisions are in its own ring (and in the audit log).
 */
export function registerDecisionsRoute(
  app: Hono<AdminEnv>,
  decisions: Pick<RecentDecisions, "list" | "capacity" | "size">,
): void {
  app.get("/admin/v1/decisions", (c) => {
    authorize(c, { action: "read" });
    const filter = (name: string): string | undefined => {
      const value = c.req.query(name);
      if (value === undefined || value === "") return undefined;
      if (value.length > MAX_FILTER_CHARS)
        throw badRequest(`${name}: at most ${MAX_FILTER_CHARS} characters`);
      return value;
    };
    const outcome = filter("outcome");
    if (outcome !== undefined && !isAuditOutcome(outcome))
      throw badRequest(`outcome: one of ${AUDIT_OUTCOMES.join(", ")}`);
    const rawLimit = filter("limit");
    const limit = rawLimit === undefined ? DEFAULT_LIMIT : Number(rawLimit);
    if (
      !/^\d{1,4}$/.test(rawLimit ?? "1") ||
      !Number.isInteger(limit) ||
      limit < 1 ||
      limit > MAX_DECISIONS_LIMIT
    )
      throw badRequest(`limit: an integer from 1 to ${MAX_DECISIONS_LIMIT}`);
    return c.json({
      decisions: decisions.list({
        project: filter("project"),
        outcome,
        repository: filter("repository"),
        limit,
      }),
      remembered: decisions.size,
      capacity: decisions.capacity,
    });
  });
}
