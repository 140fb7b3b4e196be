import { z } from "zod";
import { NAME_RE } from "../oci/index.ts";
import {
  compileSignerIdentity,
  FULCIO_EXTENSIONS,
  type KeyAuthority,
  type KeylessAuthority,
  parseTrustedKey,
  type TrustRoot,
} from "../verify/index.ts";

/**
 * Every option a project's policy has, declared once: the schema of its value (the same for the
 * config file's `projects.<name>` and `defaults`, and for the admin API's policy PUT), its value
 * when nobody sets it, and whether it is part of the verdict fingerprint. The config loader and the
 * admin API parse with schemas built from this table, and the fingerprint is computed from it: a
 * new option is in the fingerprint unless NOT_IN_FINGERPRINT says why not.
 */

export const projectModes = ["off", "audit", "enforce"] as const;
export type ProjectMode = (typeof projectModes)[number];

export const lookupErrorActions = ["deny", "allow"] as const;
export type LookupErrorAction = (typeof lookupErrorActions)[number];

/**
 * A trusted key as written: a name and the PEM inline, or (config file only: the admin API has no
 * file access) a path to read it from. Parsed by verify/ exactly once, when the policy is resolved.
 */
/** A trusted root's name: `public-good` (built in) or one under `trustedRoots`. */
const rootName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "a trusted root name like 'public-good'");

const keyInput = z
  .strictObject({
    name: z.string().min(1).max(100),
    path: z.string().min(1).optional(),
    pem: z
      .string()
      .min(1)
      .max(64 * 1024)
      .optional(),
    /** required (default, as `cosign verify --key`): a verified log entry naming the key; optional: verified if present. */
    transparencyLog: z.enum(["required", "optional"]).optional(),
    /** Whose Rekor keys and TSAs check the log entry and timestamps (default public-good). */
    trustedRoot: rootName.optional(),
  })
  .refine((k) => (k.path === undefined) !== (k.pem === undefined), {
    message: "give exactly one of path or pem",
  });
export type KeyInput = z.infer<typeof keyInput>;

/**
 * One accepted keyless signer: the OIDC issuer and the certificate subject (each exact or an
 * anchored regular expression), optional exact Fulcio extension values, and the root of its Fulcio
 * CAs, CT logs, Rekor logs and TSAs.
 */
const keylessInput = z
  .strictObject({
    name: z.string().min(1).max(100),
    issuer: z.string().min(1).max(1000).optional(),
    issuerRegExp: z.string().min(1).max(1000).optional(),
    subject: z.string().min(1).max(1000).optional(),
    subjectRegExp: z.string().min(1).max(1000).optional(),
    extensions: z
      .record(
        z
          .string()
          .refine(
            (n) => Object.hasOwn(FULCIO_EXTENSIONS, n),
            "a Fulcio extension name like sourceRepositoryURI",
          ),
        z.string().min(1).max(1000),
      )
      .optional(),
    trustedRoot: rootName.optional(),
  })
  .refine((k) => (k.issuer === undefined) !== (k.issuerRegExp === undefined), {
    message: "give exactly one of issuer or issuerRegExp",
  })
  .refine((k) => (k.subject === undefined) !== (k.subjectRegExp === undefined), {
    message: "give exactly one of subject or subjectRegExp",
  });
export type KeylessInput = z.infer<typeof keylessInput>;

/** An upstream's name (config `upstreams[].name`), as projects refer to it. */
export const UPSTREAM_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A repository glob: name characters plus `*` (within one path segment) and `**` (across segments). */
const repositoryGlob = z
  .string()
  .regex(/^[a-z0-9._*/-]{1,255}$/, "a repository glob like 'proj/tools/*' or 'proj/**'");

/** A principal allowed to pull: an exact name, a `prefix*`, or `*` alone (any authenticated client). */
const pullEntry = z
  .string()
  .regex(/^(?:\*|[^\s*]{1,256}\*?)$/, "a principal name, 'prefix*', or '*' (no spaces; '*' only at the end)");

/** The schema of each option's value. */
export const projectOptionSchemas = {
  mode: z.enum(projectModes),
  /** Trusted public keys; any one key or keyless identity suffices. */
  keys: z.array(keyInput).max(100),
  /** Accepted keyless signer identities (Fulcio certificates, Rekor proof). */
  keyless: z.array(keylessInput).max(100),
  /** Repositories served without a signature check (logged as exempt). */
  exempt: z.array(repositoryGlob).max(1000),
  /**
   * Where signatures live when not beside the image (cosign's COSIGN_REPOSITORY), on the same
   * upstream; null (admin API) clears an inherited one.
   */
  signatureRepository: z.string().regex(NAME_RE, "a repository name like 'proj/signatures'").nullable(),
  /** When signatures could not be looked up (upstream 429/5xx/timeout): deny (503) or allow. */
  onLookupError: z.enum(lookupErrorActions),
  /** true: a manifest HEAD gets the decision a GET would; false: HEAD answers and verification starts in the background. */
  gateHead: z.boolean(),
  /** true: blobs are served only when a manifest allowed for this policy lists them. */
  strictBlobs: z.boolean(),
  /** true: a signature counts only if it names the repository pulled (simple-signing docker-reference). */
  matchRepository: z.boolean(),
  /**
   * The upstreams (by name) whose repositories this project governs, or ["*"]. Required when several
   * upstreams are configured; elsewhere the project gets `defaults`. Not settable in `defaults`.
   */
  upstreams: z
    .array(z.string().refine((n) => n === "*" || UPSTREAM_NAME_RE.test(n), "an upstream name or *"))
    .min(1)
    .max(100),
  /** Who may pull (client authentication): principal names, `prefix*`, or `*`. Config file only. */
  pull: z.array(pullEntry).max(1000),
};

export type ProjectOptionName = keyof typeof projectOptionSchemas;
export const PROJECT_OPTION_NAMES = Object.keys(projectOptionSchemas) as ProjectOptionName[];

/** Options as written (file or API): every one optional. */
export type RawProjectOptions = {
  [K in ProjectOptionName]?: z.infer<(typeof projectOptionSchemas)[K]> | undefined;
};

/** A trusted key of a policy: verify/'s parsed key with its log rule and trusted root. */
export type PolicyKey = KeyAuthority;

/**
 * A policy's options, resolved: every option has a value (its type follows from its schema); keys
 * are parsed and keyless identities compiled (each with its trusted root), and a cleared
 * signatureRepository is undefined.
 */
export type ProjectOptions = {
  readonly [K in ProjectOptionName]: K extends "keys"
    ? readonly PolicyKey[]
    : K extends "keyless"
      ? readonly KeylessAuthority[]
      : K extends "signatureRepository"
        ? string | undefined
        : Readonly<z.infer<(typeof projectOptionSchemas)[K]>>;
};

/** Each option's value when neither the project nor `defaults` sets it. */
export const OPTION_DEFAULTS: ProjectOptions = {
  mode: "off",
  keys: [],
  keyless: [],
  exempt: [],
  signatureRepository: undefined,
  onLookupError: "deny",
  gateHead: false,
  strictBlobs: false,
  matchRepository: false,
  upstreams: ["*"],
  pull: ["*"],
};

/**
 * The options a verdict does not depend on, and why; every other option is part of the policy
 * fingerprint (policy-fingerprint.ts), so a cached verdict never outlives a change to it.
 */
export const NOT_IN_FINGERPRINT: Readonly<Partial<Record<ProjectOptionName, string>>> = {
  gateHead: "it decides when a HEAD waits for the decision, not what the decision is",
  pull: "who may pull is checked before any decision (client authentication), per request",
};

/** Options `defaults` cannot set: a project's reach is its own. */
const PROJECT_ONLY: readonly ProjectOptionName[] = ["upstreams"];
/** Options the admin API cannot set: who may pull belongs to the deployment's config. */
const FILE_ONLY: readonly ProjectOptionName[] = ["pull"];

function optionsSchema(leaveOut: readonly ProjectOptionName[]) {
  const shape: Record<string, z.ZodType> = {};
  for (const name of PROJECT_OPTION_NAMES) {
    if (!leaveOut.includes(name)) shape[name] = projectOptionSchemas[name].optional();
  }
  return z.strictObject(shape) as unknown as z.ZodType<RawProjectOptions>;
}

/** `projects.<name>` in the config file. */
export const fileProjectSchema = optionsSchema([]);
/** `defaults` in the config file. */
export const fileDefaultsSchema = optionsSchema(PROJECT_ONLY);
/**
 * The body of `PUT /admin/v1/projects/{project}/policy`: any subset of a project's options, merged
 * into the project's runtime override (so `{"mode":"enforce"}` changes only the mode). Keys come
 * inline as PEM: the API has no file access.
 */
export const policyOverrideSchema = optionsSchema(FILE_ONLY).superRefine((o, ctx) => {
  for (const [i, k] of (o.keys ?? []).entries()) {
    if (k.path !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["keys", i, "path"],
        message: "the admin API reads no files: give the key inline as pem",
      });
  }
});

export type PolicyOverride = RawProjectOptions;

/** How the key files of a policy are read (the config loader); without it only inline PEM is accepted. */
export type KeyFileReader = (path: string) => string;

/** The built-in trusted root's name, the default of every key and identity. */
export const PUBLIC_GOOD = "public-good";

/** What resolving options needs besides the options: the trusted roots by name, and (file only) a key reader. */
export interface ResolveContext {
  roots: ReadonlyMap<string, TrustRoot>;
  readKeyFile?: KeyFileReader | undefined;
}

/**
 * `raw` applied on top of `base`: each option the raw layer sets replaces the base's (keys parsed
 * by verify/, signatureRepository null cleared). Problems (unreadable or unacceptable keys) are
 * added to `problems` as `${where}.keys[i]…: …`; a key with a problem is left out.
 */
export function applyOptions(
  base: ProjectOptions,
  raw: RawProjectOptions | undefined,
  where: string,
  problems: string[],
  ctx: ResolveContext,
): ProjectOptions {
  if (!raw) return base;
  const out: Record<string, unknown> = { ...base };
  for (const name of PROJECT_OPTION_NAMES) {
    const value = raw[name];
    if (value === undefined) continue;
    if (name === "keys") out.keys = resolveKeys(value as KeyInput[], `${where}keys`, problems, ctx);
    else if (name === "keyless")
      out.keyless = resolveKeyless(value as KeylessInput[], `${where}keyless`, problems, ctx);
    else if (name === "signatureRepository") out.signatureRepository = value ?? undefined;
    else out[name] = value;
  }
  return out as unknown as ProjectOptions;
}

function rootFor(name: string | undefined, at: string, problems: string[], ctx: ResolveContext) {
  const root = ctx.roots.get(name ?? PUBLIC_GOOD);
  if (!root)
    problems.push(
      `${at}.trustedRoot: no trusted root is called ${JSON.stringify(name ?? PUBLIC_GOOD)} (configure it under trustedRoots)`,
    );
  return root;
}

function resolveKeyless(
  inputs: readonly KeylessInput[],
  where: string,
  problems: string[],
  ctx: ResolveContext,
): KeylessAuthority[] {
  const out: KeylessAuthority[] = [];
  for (const [i, k] of inputs.entries()) {
    const at = `${where}[${i}]`;
    const root = rootFor(k.trustedRoot, at, problems, ctx);
    try {
      const identity = compileSignerIdentity(k);
      if (root) out.push({ kind: "keyless", name: k.name, identity, root });
    } catch (err) {
      problems.push(`${at}: ${(err as Error).message}`);
    }
  }
  return out;
}

function resolveKeys(
  inputs: readonly KeyInput[],
  where: string,
  problems: string[],
  ctx: ResolveContext,
): PolicyKey[] {
  const { readKeyFile } = ctx;
  const keys: PolicyKey[] = [];
  for (const [i, k] of inputs.entries()) {
    const at = `${where}[${i}]`;
    const root = rootFor(k.trustedRoot, at, problems, ctx);
    let pem = k.pem;
    if (k.path !== undefined) {
      if (!readKeyFile) {
        problems.push(`${at}.path: keys are given inline (pem) here`);
        continue;
      }
      try {
        pem = readKeyFile(k.path);
      } catch (err) {
        problems.push(
          `${at}.path: cannot read ${k.path} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
        );
        continue;
      }
    }
    try {
      const key = parseTrustedKey({ name: k.name, pem: pem ?? "" });
      if (root)
        keys.push({ kind: "key", name: k.name, key, transparencyLog: k.transparencyLog ?? "required", root });
    } catch (err) {
      problems.push(`${at}: ${(err as Error).message}`);
    }
  }
  return keys;
}

/**
 * Where a project's policy applies. A project name is a namespace per registry (`proj` on one
 * registry is not `proj` on another), so with several upstreams the reach must be said: an
 * exemption written for one registry must not admit the same names pulled from another.
 */
export function reachProblems(
  upstreams: readonly string[] | undefined,
  where: string,
  upstreamNames: readonly string[],
): string[] {
  const problems: string[] = [];
  if (upstreams === undefined) {
    if (upstreamNames.length > 1)
      problems.push(
        `${where}: required when several upstreams are configured: list the upstreams whose repositories this project governs (its exemptions included), or ["*"] for all`,
      );
    return problems;
  }
  for (const [i, n] of upstreams.entries()) {
    if (n !== "*" && !upstreamNames.includes(n))
      problems.push(`${where}[${i}]: no upstream is called ${JSON.stringify(n)}`);
  }
  if (upstreams.includes("*") && upstreams.length > 1) problems.push(`${where}: "*" stands alone`);
  return problems;
}
