import { z } from "zod";
import { NAME_RE } from "../oci/index.ts";
import {
  type AttestationRequirement,
  type Authority,
  compileRequirements,
  compileSignerIdentity,
  FULCIO_EXTENSIONS,
  type KeyAuthority,
  type KeylessAuthority,
  NO_REQUIREMENTS,
  parseTrustedKey,
  type Requirements,
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

/** An RFC 3339 time with a zone (`2026-01-01T00:00:00Z`), as a key's validity bound. */
const instant = z.iso.datetime({ offset: true });

const keyInput = z
  .strictObject({
    name: z.string().min(1).max(100),
    path: z.string().min(1).optional(),
    pem: z
      .string()
      .min(1)
      .max(64 * 1024)
      .optional(),
    /** A key held in a cloud KMS, as cosign names it: awskms://[ENDPOINT]/KEY-ID|alias/NAME, gcpkms://projects/…/cryptoKeyVersions/N. */
    kms: z.string().min(1).max(2048).optional(),
    /** The key's validity window, checked against each signature's verified log/TSA time (without one: now). */
    notBefore: instant.optional(),
    notAfter: instant.optional(),
    /** required (default, as `cosign verify --key`): a verified log entry naming the key; optional: verified if present. */
    transparencyLog: z.enum(["required", "optional"]).optional(),
    /** Whose Rekor keys and TSAs check the log entry and timestamps (default public-good). */
    trustedRoot: rootName.optional(),
  })
  .refine((k) => [k.path, k.pem, k.kms].filter((v) => v !== undefined).length === 1, {
    message: "give exactly one of path, pem or kms",
  })
  .refine(
    (k) =>
      k.notBefore === undefined ||
      k.notAfter === undefined ||
      Date.parse(k.notBefore) <= Date.parse(k.notAfter),
    {
      message: "notBefore is after notAfter",
    },
  );
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

/** A signer's name: a key's or keyless identity's `name`, as thresholds and attestations refer to it. */
const signerName = z.string().min(1).max(100);

/** One required attestation: its predicate type, who may make it, and a CEL condition over it. */
const attestationInput = z.strictObject({
  name: z.string().min(1).max(100),
  predicateType: z.string().min(1).max(1000),
  signers: z.array(signerName).min(1).max(100).optional(),
  condition: z.string().min(1).max(4096).optional(),
});
export type AttestationInput = z.infer<typeof attestationInput>;

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
  /** Distinct signers (keys or identities, by name) whose signatures must count. */
  threshold: z.number().int().min(1).max(100),
  /** Signer names that must each be among the counted signers. */
  requiredSigners: z.array(signerName).max(100),
  /** `cosign sign -a k=v`: every counted signature's payload must carry these. */
  annotations: z
    .record(z.string().min(1).max(256), z.string().max(1024))
    .refine((r) => Object.keys(r).length <= 64, "at most 64 annotations"),
  /** Required attestations: each met by at least one verified attestation of its type. */
  attestations: z.array(attestationInput).max(16),
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

/**
 * A trusted key of a policy: verify/'s parsed key with its log rule, trusted root and validity
 * window. A KMS key carries its reference; its key is filled in when the policy is built from what
 * the KMS keyring holds (undefined, with `unavailable` saying why, while it cannot be fetched).
 */
export type PolicyKey = Omit<KeyAuthority, "key"> & {
  key: KeyAuthority["key"] | undefined;
  kms?: string | undefined;
  unavailable?: string | undefined;
};

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
      : K extends "attestations"
        ? readonly AttestationRequirement[]
        : K extends "signatureRepository"
          ? string | undefined
          : Readonly<z.infer<(typeof projectOptionSchemas)[K]>>;
};

/** Each option's value when neither the project nor `defaults` sets it. */
export const OPTION_DEFAULTS: ProjectOptions = {
  mode: "off",
  keys: [],
  keyless: [],
  threshold: 1,
  requiredSigners: [],
  annotations: {},
  attestations: [],
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
  /** The absolute path a relative key path is read from (for problems: "cannot read k.pub at /etc/…"). */
  describePath?: ((path: string) => string) | undefined;
  /** Why a `kms` reference is not usable (malformed, unsupported provider); undefined when it is. */
  kmsProblem?: ((reference: string) => string | undefined) | undefined;
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
    else if (name === "attestations")
      out.attestations = resolveAttestations(value as AttestationInput[], `${where}attestations`, problems);
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
    const common = {
      kind: "key" as const,
      name: k.name,
      transparencyLog: k.transparencyLog ?? "required",
      notBefore: k.notBefore === undefined ? undefined : Date.parse(k.notBefore),
      notAfter: k.notAfter === undefined ? undefined : Date.parse(k.notAfter),
    };
    if (k.kms !== undefined) {
      const problem = ctx.kmsProblem?.(k.kms);
      if (problem !== undefined) problems.push(`${at}.kms: ${problem}`);
      else if (root) keys.push({ ...common, root, key: undefined, kms: k.kms });
      continue;
    }
    let pem = k.pem;
    if (k.path !== undefined) {
      if (!readKeyFile) {
        problems.push(`${at}.path: keys are given inline (pem) here`);
        continue;
      }
      try {
        pem = readKeyFile(k.path);
      } catch (err) {
        const where = ctx.describePath ? ` at ${ctx.describePath(k.path)}` : "";
        problems.push(
          `${at}.path: cannot read ${k.path}${where} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
        );
        continue;
      }
    }
    try {
      const key = parseTrustedKey({ name: k.name, pem: pem ?? "" });
      if (root) keys.push({ ...common, key, root });
    } catch (err) {
      problems.push(`${at}: ${(err as Error).message}`);
    }
  }
  return keys;
}

function resolveAttestations(
  inputs: readonly AttestationInput[],
  where: string,
  problems: string[],
): AttestationRequirement[] {
  // Each entry on its own: one that does not compile is reported and kept (without its program), so
  // the checks across options still see its name and signers; the policy is refused either way.
  return inputs.map((input, i) => {
    const compiled = compileRequirements({ ...NO_REQUIREMENTS.spec, attestations: [input] });
    if (!("problems" in compiled)) return compiled.attestations[0] as AttestationRequirement;
    problems.push(...compiled.problems.map((p) => `${where}[${i}]${p.slice("attestations[0]".length)}`));
    return { ...input, compiled: undefined };
  });
}

/** The keys (those with key material) and keyless identities of a policy, as verify/ takes them. */
export function policyAuthorities(options: Pick<ProjectOptions, "keys" | "keyless">): Authority[] {
  const keys = options.keys.flatMap((k): KeyAuthority[] => (k.key ? [{ ...k, key: k.key }] : []));
  return [...keys, ...options.keyless];
}

/** A policy's signer and attestation requirements, as verify/ takes them. */
export function policyRequirements(
  options: Pick<ProjectOptions, "threshold" | "requiredSigners" | "annotations" | "attestations">,
): Requirements {
  const attestations = options.attestations.map(({ compiled: _compiled, ...spec }) => spec);
  return {
    spec: {
      threshold: options.threshold,
      requiredSigners: options.requiredSigners,
      annotations: options.annotations,
      attestations,
    },
    attestations: options.attestations,
  };
}

/**
 * What the options ask of each other, once merged (a project's own on top of `defaults`): signer
 * names unique across keys and keyless identities; requiredSigners and attestation signers name
 * one of them; the threshold reachable; attestation names unique.
 */
export function crossOptionProblems(options: ProjectOptions, where: string): string[] {
  const problems: string[] = [];
  const names = [...options.keys.map((k) => k.name), ...options.keyless.map((k) => k.name)];
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n))
      problems.push(
        `${where}keys/keyless: the name ${JSON.stringify(n)} is used twice (signers are counted by name)`,
      );
    seen.add(n);
  }
  for (const [i, n] of options.requiredSigners.entries())
    if (!seen.has(n))
      problems.push(
        `${where}requiredSigners[${i}]: no key or keyless identity is called ${JSON.stringify(n)}`,
      );
  if (options.threshold > Math.max(1, seen.size))
    problems.push(
      `${where}threshold: ${options.threshold} signers required, but the policy has only ${seen.size} distinct signer name(s)`,
    );
  const attestationNames = new Set<string>();
  for (const [i, a] of options.attestations.entries()) {
    if (attestationNames.has(a.name))
      problems.push(`${where}attestations[${i}].name: ${JSON.stringify(a.name)} is used twice`);
    attestationNames.add(a.name);
    for (const [j, n] of (a.signers ?? []).entries())
      if (!seen.has(n))
        problems.push(
          `${where}attestations[${i}].signers[${j}]: no key or keyless identity is called ${JSON.stringify(n)}`,
        );
  }
  return problems;
}

/**
 * What the options allow but probably do not mean: a policy that checks signatures (audit or
 * enforce) and trusts nobody denies (or would deny) every image.
 */
export function optionWarnings(options: ProjectOptions, where: string): string[] {
  if (options.mode === "off" || options.keys.length > 0 || options.keyless.length > 0) return [];
  return [
    `${where}mode is ${options.mode} and the policy trusts no key and no keyless identity: every image ${options.mode === "enforce" ? "is denied" : "is recorded as would-deny"} (add keys or keyless, or set mode off)`,
  ];
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
