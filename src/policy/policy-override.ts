import { z } from "zod";

/**
 * The body of `PUT /admin/v1/projects/{project}/policy`: any subset of a project's options. It is
 * merged into the project's current runtime override (so `{"mode":"enforce"}` changes only the mode);
 * a full object replaces every option. Keys come inline as PEM (the API has no file access).
 */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

export const policyOverrideSchema = z.strictObject({
  mode: z.enum(["off", "audit", "enforce"]).optional(),
  keys: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(100),
        pem: z
          .string()
          .min(1)
          .max(64 * 1024),
      }),
    )
    .max(100)
    .optional(),
  exempt: z
    .array(z.string().regex(/^[a-z0-9._*/-]{1,255}$/, "a repository glob like 'proj/tools/*'"))
    .max(1000)
    .optional(),
  signatureRepository: z
    .string()
    .regex(NAME, "a repository name like 'proj/signatures'")
    .nullable()
    .optional(),
  onLookupError: z.enum(["deny", "allow"]).optional(),
  gateHead: z.boolean().optional(),
  strictBlobs: z.boolean().optional(),
  matchRepository: z.boolean().optional(),
  /** Upstream names this project's policy applies to, or ["*"]. */
  upstreams: z
    .array(z.string().regex(/^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,62})$/, "an upstream name or *"))
    .min(1)
    .max(100)
    .optional(),
});

export type PolicyOverride = z.infer<typeof policyOverrideSchema>;

export function parsePolicyOverride(
  value: unknown,
): { ok: true; value: PolicyOverride } | { ok: false; problems: string[] } {
  const r = policyOverrideSchema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  return {
    ok: false,
    problems: r.error.issues.map((i) => `${i.path.length > 0 ? i.path.join(".") : "(body)"}: ${i.message}`),
  };
}
