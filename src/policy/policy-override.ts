import { type PolicyOverride, policyOverrideSchema } from "./project-options.ts";

/** A runtime override (admin API body or stored value) checked against the one options schema. */
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
