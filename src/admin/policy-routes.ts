import type { Context, Hono } from "hono";
import type { VerdictCache } from "../cache/index.ts";
import { isDigest, OciError } from "../oci/index.ts";
import { type EffectivePolicy, optionWarnings, type PolicyRegistry, toPolicyView } from "../policy/index.ts";
import type { AuditLog } from "../telemetry/index.ts";
import type { AdminRole } from "./admin-auth.ts";
import { type AdminEnv, authorize, projectParam, readJson } from "./admin-request.ts";

/** The policy API: every project's policy, runtime changes and resets (audited), and the verdict cache. */
export function registerPolicyRoutes(
  app: Hono<AdminEnv>,
  api: { policies: PolicyRegistry; cache: VerdictCache; audit: AuditLog },
): void {
  app.get("/admin/v1/projects", (c) => {
    authorize(c, { action: "read" });
    return c.json({
      projects: api.policies.list().map(toPolicyView),
      defaults: toPolicyView(api.policies.forProject("")),
    });
  });

  app.get("/admin/v1/projects/:project/policy", (c) => {
    const project = projectParam(c);
    authorize(c, { action: "read" });
    return c.json(toPolicyView(api.policies.forProject(project)));
  });

  app.put("/admin/v1/projects/:project/policy", async (c) => {
    const project = projectParam(c);
    const role = authorize(c, { action: "write-project", project });
    const body = await readJson(c);
    const change = await api.policies.update(project, body);
    const view = auditPolicyChange(c, api.audit, role, "policy.update", project, change);
    // Accepted, but probably not meant (enforce and trust nobody: every image denied): said in the answer.
    const warnings = optionWarnings(change.after, "");
    return c.json(warnings.length > 0 ? { ...view, warnings } : view);
  });

  app.delete("/admin/v1/projects/:project/policy", async (c) => {
    const project = projectParam(c);
    const role = authorize(c, { action: "write-project", project });
    const change = await api.policies.reset(project);
    return c.json(auditPolicyChange(c, api.audit, role, "policy.reset", project, change));
  });

  app.delete("/admin/v1/cache/:digest", async (c) => {
    const digest = c.req.param("digest");
    const role = authorize(c, { action: "write" });
    if (!isDigest(digest)) throw new OciError("DIGEST_INVALID", "invalid digest");
    const deleted = await api.cache.deleteDigest(digest);
    api.audit.adminChange({
      actor: c.get("principal").actor,
      role,
      action: "cache.delete",
      target: digest,
      after: { deleted },
    });
    return c.json({ digest, deleted });
  });
}

/** Records a policy change (actor, the role that allowed it, before and after) and returns the new view. */
function auditPolicyChange(
  c: Context<AdminEnv>,
  audit: AuditLog,
  role: AdminRole,
  action: "policy.update" | "policy.reset",
  project: string,
  change: { before: EffectivePolicy; after: EffectivePolicy },
): Record<string, unknown> {
  const after = toPolicyView(change.after);
  audit.adminChange({
    actor: c.get("principal").actor,
    role,
    action,
    target: project,
    before: toPolicyView(change.before),
    after,
  });
  return after;
}
