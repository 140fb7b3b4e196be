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
  const canonical: Record<string, unknown> = { v: 2, project };
  for (const name of PROJECT_OPTION_NAMES) {
    if (Object.hasOwn(NOT_IN_FINGERPRINT, name)) continue;
    canonical[name] = canonicalValue(name, options[name]);
  }
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex").slice(0, 32);
}

function canonicalValue(name: ProjectOptionName, value: ProjectOptions[ProjectOptionName]): unknown {
  // A key: its SPKI (a KMS key not yet fetched: its reference), its log rule, its validity window
  // and the exact bytes of its root (a changed root file changes it).
  if (name === "keys")
    return (value as ProjectOptions["keys"])
      .map(
        (k) =>
          `${k.key ? k.key.fingerprint : `unavailable:${k.kms}`} ${k.transparencyLog} ${k.root.sha256} ${k.notBefore ?? "-"} ${k.notAfter ?? "-"}`,
      )
      .sort();
  // An attestation requirement: everything but its compiled condition (its source is there).
  if (name === "attestations")
    return (value as ProjectOptions["attestations"]).map(({ compiled: _compiled, ...spec }) =>
      JSON.stringify(canonicalJson(spec)),
    );
  if (name === "annotations") return canonicalJson(value);
  // An identity: what it accepts and the exact bytes of its root; not its name.
  if (name === "keyless")
    return (value as ProjectOptions["keyless"])
      .map((k) => {
        const { name: _name, trustedRoot: _root, ...accepts } = k.identity.spec as Record<string, unknown>;
        return JSON.stringify([canonicalJson(accepts), k.root.sha256]);
      })
      .sort();
  if (Array.isArray(value)) return [...value].sort();
  return value ?? null;
}

/** Object keys sorted, recursively: equal values give equal text. */
function canonicalJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalJson);
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, canonicalJson(v)]),
    );
  return value;
}
