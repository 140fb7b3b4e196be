import { createHash } from "node:crypto";
import {
  NOT_IN_FINGERPRINT,
  PROJECT_OPTION_NAMES,
  type ProjectOptionName,
  type ProjectOptions,
} from "./project-options.ts";

/**
 * The verdict fingerprint of a project's policy: part of every cache key, so a change to anything a
 * verdict depends on makes the old verdicts unreachable. Derived from the option table: every option
 * except those NOT_IN_FINGERPRINT names is in it (keys by their fingerprints, lists as sets), so an
 * option added to the table cannot be left out.
 */
export function policyFingerprint(project: string, options: ProjectOptions): string {
  const canonical: Record<string, unknown> = { v: 1, project };
  for (const name of PROJECT_OPTION_NAMES) {
    if (Object.hasOwn(NOT_IN_FINGERPRINT, name)) continue;
    canonical[name] = canonicalValue(name, options[name]);
  }
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex").slice(0, 32);
}

function canonicalValue(name: ProjectOptionName, value: ProjectOptions[ProjectOptionName]): unknown {
  if (name === "keys") return (value as ProjectOptions["keys"]).map((k) => k.fingerprint).sort();
  if (Array.isArray(value)) return [...value].sort();
  return value ?? null;
}
