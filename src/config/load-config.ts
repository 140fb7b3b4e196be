import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, resolve } from "node:path";
import { createSecureContext } from "node:tls";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { parseKmsReference } from "../kms/index.ts";
import {
  applyOptions,
  crossOptionProblems,
  OPTION_DEFAULTS,
  optionWarnings,
  type ProjectOptions,
  PUBLIC_GOOD,
  reachProblems,
} from "../policy/index.ts";
import { parseTrustRoot, type TrustRoot } from "../verify/index.ts";
import { parseHtpasswd } from "./htpasswd.ts";
import {
  DEFAULT_CREDENTIAL_HELPER_CACHE_SECONDS,
  DEFAULT_CREDENTIAL_HELPER_TIMEOUT_MS,
  EMBEDDED_DEFAULT_CONFIG,
  type RawConfig,
  rawConfigSchema,
} from "./schema.ts";
import { Secret } from "./secret.ts";
import type {
  AdminJwtConfig,
  AlertsConfig,
  AlertWebhookConfig,
  ClientAuthConfig,
  Config,
  ListenAddress,
  RedisTopology,
  TlsConfig,
  UpstreamConfig,
  UpstreamCredentialsConfig,
} from "./types.ts";

/** Every problem found in a configuration, each prefixed with its path ("upstreams[1].url: …"). */
export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`invalid configuration (${source}):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

export interface LoadConfigOptions {
  /** Config file; when absent the embedded default is used. */
  path?: string | undefined;
  /** YAML text instead of a file (tests); relative key paths resolve against `baseDir`. */
  text?: string;
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const { text, source, baseDir, env } = readConfigSource(options);
  return parseConfig(text, { source, baseDir, env, requireClientAuthForCredentials: true });
}

/**
 * The files of the configured trusted roots (name → absolute path), from the configuration's own text:
 * unlike loadConfig it does not read them, so `pullgate trust update` can write a file that does not
 * exist yet. The built-in `public-good` is listed only when `trustedRoots.public-good` replaces it.
 */
export function configuredTrustedRootFiles(options: LoadConfigOptions = {}): {
  source: string;
  files: ReadonlyMap<string, string>;
} {
  const { text, source, baseDir, env } = readConfigSource(options);
  const raw = parseRawConfig(text, source, { baseDir, env });
  return {
    source,
    files: new Map(Object.entries(raw.trustedRoots).map(([name, r]) => [name, resolve(baseDir, r.path)])),
  };
}

function readConfigSource(options: LoadConfigOptions): {
  text: string;
  source: string;
  baseDir: string;
  env: NodeJS.ProcessEnv;
} {
  const env = options.env ?? process.env;
  if (options.text !== undefined) {
    return { text: options.text, source: "inline", baseDir: options.baseDir ?? process.cwd(), env };
  }
  if (options.path !== undefined) {
    const source = resolve(options.path);
    try {
      return { text: readFileSync(source, "utf8"), source, baseDir: dirname(source), env };
    } catch (err) {
      throw new ConfigError(source, [
        `cannot read config file: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      ]);
    }
  }
  return { text: EMBEDDED_DEFAULT_CONFIG, source: "embedded default", baseDir: process.cwd(), env };
}

/**
 * YAML (unique keys) checked against the file's schema. A file with schema problems is refused, but
 * not before the rest of it has been checked too: the settings the problems are at are left out (an
 * unknown key dropped, a bad value back to its default) and what remains is resolved, so one bad
 * glob does not hide five other problems. Problems under a left-out setting are not repeated.
 */
function parseRawConfig(
  text: string,
  source: string,
  ctx: { baseDir: string; env: NodeJS.ProcessEnv },
): RawConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true }) ?? {};
  } catch (err) {
    throw new ConfigError(source, [`YAML: ${(err as Error).message.split("\n")[0]}`]);
  }
  const parsed = rawConfigSchema.safeParse(doc);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(formatIssue);
  const rest = withoutProblems(doc, parsed.error.issues);
  if (rest) {
    const more: string[] = [];
    try {
      resolveConfig(rest.raw, { source, ...ctx }, more);
    } catch {
      // The remainder is only a best effort: the schema problems stand on their own.
    }
    const left = rest.leftOut.map((p) => formatPath(p));
    problems.push(...more.filter((m) => !left.some((l) => m.startsWith(l))));
  }
  throw new ConfigError(source, problems);
}

/** The document without the settings the issues are at, if that is then valid (at most 3 rounds). */
function withoutProblems(
  doc: unknown,
  issues: readonly z.core.$ZodIssue[],
): { raw: RawConfig; leftOut: PropertyKey[][] } | undefined {
  const current: unknown = structuredClone(doc);
  let pending = issues;
  const leftOut: PropertyKey[][] = [];
  for (let round = 0; round < 3; round++) {
    for (const issue of pending) {
      if (issue.code === "unrecognized_keys") {
        const parent = at(current, issue.path);
        for (const k of issue.keys) if (isObject(parent)) delete parent[k];
      } else if (issue.path.length > 0) {
        // A bad array entry leaves the whole list out (the other entries' indices stay what the
        // problems say); anything else leaves out just that setting.
        let path = [...issue.path];
        while (path.length > 0 && Array.isArray(at(current, path.slice(0, -1)))) path = path.slice(0, -1);
        if (path.length === 0) return undefined;
        const parent = at(current, path.slice(0, -1));
        if (isObject(parent)) delete parent[path.at(-1) as string];
        leftOut.push(path);
      } else return undefined;
    }
    const again = rawConfigSchema.safeParse(current);
    if (again.success) return { raw: again.data, leftOut };
    pending = again.error.issues;
  }
  return undefined;
}

function at(value: unknown, path: readonly PropertyKey[]): unknown {
  let here = value;
  for (const part of path)
    here = isObject(here) || Array.isArray(here) ? (here as Record<PropertyKey, unknown>)[part] : undefined;
  return here;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The file's own rules. `requireClientAuthForCredentials` (what loadConfig, and so the CLI, does) also
 * refuses upstream credentials without client authentication; createDeps checks that again before serving.
 */
export function parseConfig(
  text: string,
  ctx: {
    source: string;
    baseDir: string;
    env: NodeJS.ProcessEnv;
    requireClientAuthForCredentials?: boolean;
  },
): Config {
  const raw = parseRawConfig(text, ctx.source, ctx);
  const problems: string[] = [];
  const config = resolveConfig(raw, ctx, problems);
  if (ctx.requireClientAuthForCredentials) problems.push(...clientAuthProblems(raw));
  if (problems.length > 0) throw new ConfigError(ctx.source, problems);
  return deepFreeze(config);
}

/** A schema problem in words: what was expected, and for an unknown key the known one it may mean. */
function formatIssue(issue: z.core.$ZodIssue): string {
  return `${formatPath(issue.path)}: ${issueWords(issue)}`;
}

function issueWords(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type": {
      const got = /received (\w+)/.exec(issue.message)?.[1];
      if (got === "undefined") return `is required (${aType(issue.expected)})`;
      return `must be ${aType(issue.expected)}${got ? `, not ${aType(got)}` : ""}`;
    }
    case "unrecognized_keys":
      return issue.keys
        .map((k) => {
          const near = closestKey(k);
          return `unknown setting ${JSON.stringify(k)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ""}`;
        })
        .join("; ");
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    default:
      return issue.message.replace(/^Invalid input: /, "");
  }
}

function aType(t: string): string {
  const words: Record<string, string> = {
    string: "a string",
    number: "a number",
    boolean: "true or false",
    object: "a mapping (key: value)",
    array: "a list",
    null: "null",
    int: "a whole number",
  };
  return words[t] ?? t;
}

/** Every key the schema knows, anywhere: the vocabulary of "did you mean". */
let knownKeys: string[] | undefined;
function closestKey(key: string): string | undefined {
  knownKeys ??= [...collectKeys(rawConfigSchema, new Set(), 0)];
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1;
  for (const known of knownKeys) {
    const d = editDistance(key.toLowerCase(), known.toLowerCase());
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return best;
}

function collectKeys(schema: unknown, into: Set<string>, depth: number): Set<string> {
  if (depth > 12 || schema === null || typeof schema !== "object") return into;
  const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  if (!def) return into;
  const shape = def.shape as Record<string, unknown> | undefined;
  if (shape)
    for (const [k, v] of Object.entries(shape)) {
      into.add(k);
      collectKeys(v, into, depth + 1);
    }
  for (const inner of [def.innerType, def.element, def.valueType, def.in, def.out, def.schema])
    collectKeys(inner, into, depth + 1);
  for (const option of (def.options as unknown[] | undefined) ?? []) collectKeys(option, into, depth + 1);
  return into;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j] as number;
      row[j] = Math.min(here + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length] as number;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(root)" : out;
}

function resolveConfig(
  raw: RawConfig,
  ctx: { source: string; baseDir: string; env: NodeJS.ProcessEnv },
  problems: string[],
): Config {
  const listen = parseListen(raw.listen, "listen", problems);
  const adminListen = parseListen(raw.admin.listen, "admin.listen", problems);
  const adminToken = raw.admin.token ?? ctx.env.PULLGATE_ADMIN_TOKEN;
  const upstreams = resolveUpstreams(raw, ctx, problems);
  const trustedRoots = resolveTrustedRoots(raw, ctx.baseDir, problems);
  const trustedRootPaths = new Map(
    Object.entries(raw.trustedRoots).map(([name, r]) => [name, resolve(ctx.baseDir, r.path)] as const),
  );
  const { defaults, projects } = resolvePolicies(raw, upstreams, trustedRoots, ctx.baseDir, problems);
  const jwt = raw.admin.jwt ? resolveAdminJwt(raw.admin.jwt, ctx.baseDir, problems) : undefined;
  const clientAuth = resolveClientAuth(raw, ctx.baseDir, problems);
  const redis = raw.redis ? resolveRedis(raw.redis, ctx, problems) : undefined;
  if (
    listen &&
    adminListen &&
    listen.port !== 0 &&
    listen.port === adminListen.port &&
    listen.host === adminListen.host
  ) {
    problems.push("admin.listen: must differ from listen");
  }

  return {
    listen: listen ?? { host: "127.0.0.1", port: 0 },
    tls: raw.tls ? resolveTls(raw.tls, ctx.baseDir, problems) : undefined,
    admin: {
      listen: adminListen ?? { host: "127.0.0.1", port: 0 },
      token: adminToken ? new Secret(adminToken) : undefined,
      jwt,
    },
    redis,
    clientAuth,
    upstreams,
    manifests: { maxBytes: raw.manifests.maxBytes },
    trustedRoots,
    trustedRootPaths,
    projects,
    defaults,
    cache: { ...raw.cache },
    kmsProblem,
    kms: resolveKms(raw.kms, ctx.baseDir, problems),
    verification: { ...raw.verification },
    limits: { ...raw.limits },
    shutdown: { drainTimeoutMs: raw.shutdown.drainTimeoutMs },
    alerts: resolveAlerts(raw.alerts, ctx.env, problems),
    log: resolveLog(raw.log, ctx.baseDir, problems),
    source: ctx.source,
  };
}

function resolveLog(raw: RawConfig["log"], baseDir: string, problems: string[]): Config["log"] {
  const { access, level, format } = raw;
  if (raw.audit.to === "stdout") {
    if (raw.audit.path !== undefined) problems.push("log.audit.path: only with log.audit.to: file");
    return { access, level, format, audit: { to: "stdout" } };
  }
  if (raw.audit.path === undefined) {
    problems.push("log.audit.path: required with log.audit.to: file");
    return { access, level, format, audit: { to: "stdout" } };
  }
  return { access, level, format, audit: { to: "file", path: resolve(baseDir, raw.audit.path) } };
}

function resolveUpstreams(
  raw: RawConfig,
  ctx: { baseDir: string; env: NodeJS.ProcessEnv },
  problems: string[],
): UpstreamConfig[] {
  const upstreams = raw.upstreams.map((u, i) => resolveUpstream(u, `upstreams[${i}]`, ctx, problems));
  checkUnique(upstreams, (u) => u.name, "name", problems);
  checkUnique(upstreams, (u) => u.registry, "registry", problems);
  checkUnique(
    upstreams.filter((u) => u.pathPrefix !== undefined),
    (u) => u.pathPrefix,
    "pathPrefix",
    problems,
  );
  const defaultUpstreams = upstreams.filter((u) => u.default);
  if (defaultUpstreams.length > 1)
    problems.push(
      `upstreams: only one upstream can be the default (${defaultUpstreams.map((u) => u.name).join(", ")})`,
    );
  const first = upstreams[0];
  if (upstreams.length === 1 && first && !first.default) first.default = true;
  return upstreams;
}

/** `defaults` and `projects`: policy/'s one schema and resolution; key files are read relative to the config. */
function resolvePolicies(
  raw: RawConfig,
  upstreams: readonly UpstreamConfig[],
  roots: ReadonlyMap<string, TrustRoot>,
  baseDir: string,
  problems: string[],
): { defaults: ProjectOptions; projects: Record<string, ProjectOptions> } {
  const resolveCtx = {
    roots,
    readKeyFile: (path: string) => readFileSync(resolve(baseDir, path), "utf8"),
    describePath: (path: string) => resolve(baseDir, path),
    kmsProblem,
  };
  const upstreamNames = upstreams.map((u) => u.name);
  const defaults: ProjectOptions = {
    ...applyOptions(OPTION_DEFAULTS, raw.defaults, "defaults.", problems, resolveCtx),
    upstreams: ["*"],
  };
  problems.push(...crossOptionProblems(defaults, "defaults."));
  const projects: Record<string, ProjectOptions> = {};
  for (const [name, p] of Object.entries(raw.projects)) {
    const where = `projects.${name}.`;
    problems.push(...reachProblems(p.upstreams, `${where}upstreams`, upstreamNames));
    projects[name] = applyOptions(defaults, p, where, problems, resolveCtx);
    problems.push(...crossOptionProblems(projects[name], where));
  }
  return { defaults, projects };
}

/**
 * What the configuration allows but probably does not mean (logged at start, printed by --check):
 * a project that checks signatures and trusts nobody. `defaults` only when it checks signatures.
 */
export function policyWarnings(config: Pick<Config, "projects" | "defaults">): string[] {
  return [
    ...optionWarnings(config.defaults, "defaults."),
    ...Object.entries(config.projects).flatMap(([name, p]) => optionWarnings(p, `projects.${name}.`)),
  ];
}

/** Why a `kms:` reference cannot be used (kms/'s parser, in config words), or undefined. */
export function kmsProblem(reference: string): string | undefined {
  const parsed = parseKmsReference(reference);
  return typeof parsed === "string" ? parsed.replace(/^kms: /, "") : undefined;
}

function resolveKms(raw: RawConfig["kms"], baseDir: string, problems: string[]): Config["kms"] {
  const awsEndpointCa =
    raw.awsEndpointCaFile === undefined
      ? undefined
      : readCaCertificates("kms.awsEndpointCaFile", raw.awsEndpointCaFile, baseDir, problems);
  return {
    timeoutMs: raw.timeoutMs,
    refreshSeconds: raw.refreshSeconds,
    awsEndpointCa,
    gcpEndpoint: raw.gcpEndpoint,
  };
}

/** The public-good trusted root shipped with pullgate (trust/README.md says where it comes from). */
const BUILT_IN_ROOT = new URL("../../trust/public-good.trusted_root.json", import.meta.url);

/**
 * `public-good` (built in; a `trustedRoots.public-good` entry replaces it with your own copy) and every
 * configured root, read and parsed now: a root that cannot be read is a config problem.
 */
function resolveTrustedRoots(raw: RawConfig, baseDir: string, problems: string[]): Map<string, TrustRoot> {
  const roots = new Map<string, TrustRoot>();
  const load = (name: string, path: string | URL, where: string) => {
    try {
      roots.set(name, parseTrustRoot(name, readFileSync(path)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push(
        `${where}: ${code === "TRUST_ROOT_INVALID" ? (err as Error).message : `cannot read ${String(path)} (${code ?? "error"})`}`,
      );
    }
  };
  if (!Object.hasOwn(raw.trustedRoots, PUBLIC_GOOD))
    load(PUBLIC_GOOD, BUILT_IN_ROOT, "trustedRoots.public-good (built in)");
  for (const [name, r] of Object.entries(raw.trustedRoots))
    load(name, resolve(baseDir, r.path), `trustedRoots.${name}.path`);
  return roots;
}

function resolveAdminJwt(
  j: NonNullable<RawConfig["admin"]["jwt"]>,
  baseDir: string,
  problems: string[],
): AdminJwtConfig {
  return {
    jwksUrl: j.jwksUrl,
    jwks:
      j.jwksPath === undefined ? undefined : readJwks(j.jwksPath, "admin.jwt.jwksPath", baseDir, problems),
    issuer: j.issuer,
    audience: j.audience,
    rolesClaim: j.rolesClaim,
    maxLifetimeSeconds: j.maxLifetimeSeconds,
  };
}

/** A JSON Web Key Set file (relative to the config file), parsed. */
function readJwks(path: string, where: string, baseDir: string, problems: string[]): unknown {
  try {
    return JSON.parse(readFileSync(resolve(baseDir, path), "utf8"));
  } catch (err) {
    problems.push(
      `${where}: cannot read a JSON Web Key Set (${(err as NodeJS.ErrnoException).code ?? "invalid JSON"})`,
    );
    return undefined;
  }
}

function resolveRedis(
  raw: NonNullable<RawConfig["redis"]>,
  ctx: { baseDir: string; env: NodeJS.ProcessEnv },
  problems: string[],
): Config["redis"] {
  const topology = resolveRedisTopology(raw, ctx, problems);
  const hmacKey = resolveRedisHmacKey(raw, ctx, problems);
  const ca =
    raw.caFile === undefined ? undefined : resolveRedisCa(raw.caFile, topology, ctx.baseDir, problems);
  if (!topology || !hmacKey) return undefined;
  // Not a URL for cluster/sentinel: a connection made from it refuses to start (connect with `topology`).
  const url = topology.kind === "standalone" ? topology.url : new Secret(`redis+${topology.kind}:`);
  return { url, topology, hmacKey: new Secret(hmacKey), ca };
}

/**
 * redis.caFile: PEM certificates, every one of which parses, for TLS (rediss://) only: with redis:// it would
 * protect nothing, so it is refused rather than ignored.
 */
function resolveRedisCa(
  caFile: string,
  topology: RedisTopology | undefined,
  baseDir: string,
  problems: string[],
): string | undefined {
  const path = "redis.caFile";
  if (topology !== undefined && !redisUsesTls(topology)) {
    problems.push(`${path}: goes with rediss:// (TLS) URLs only`);
    return undefined;
  }
  return readCaCertificates(path, caFile, baseDir, problems);
}

/**
 * A CA file's PEM text (relative to the config file), when it holds certificates that all parse; otherwise a
 * problem naming the setting and the file's absolute path.
 */
function readCaCertificates(
  setting: string,
  file: string,
  baseDir: string,
  problems: string[],
): string | undefined {
  const absolute = resolve(baseDir, file);
  let pem: string;
  try {
    pem = readFileSync(absolute, "utf8");
  } catch (err) {
    problems.push(`${setting}: cannot read ${absolute} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    return undefined;
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error("no certificate");
    for (const block of blocks) new X509Certificate(block);
  } catch {
    problems.push(`${setting}: ${absolute} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`);
    return undefined;
  }
  return pem;
}

function redisUsesTls(topology: RedisTopology): boolean {
  switch (topology.kind) {
    case "standalone":
      return topology.url.reveal().startsWith("rediss:");
    case "cluster":
      return topology.nodes.every((u) => u.reveal().startsWith("rediss:"));
    case "sentinel":
      return topology.sentinels.every((u) => u.reveal().startsWith("rediss:"));
  }
}

/** One server, a cluster's seed nodes or the sentinels; a URL's text never appears in a problem. */
function resolveRedisTopology(
  raw: NonNullable<RawConfig["redis"]>,
  ctx: { env: NodeJS.ProcessEnv },
  problems: string[],
): RedisTopology | undefined {
  const checkUrl = (url: string, path: string): boolean => {
    if (!/^rediss?:\/\/[^/]/.test(url)) {
      problems.push(`${path}: must start with redis:// or rediss://`);
      return false;
    }
    return true;
  };
  const checkUrls = (urls: readonly string[], path: string): Secret[] | undefined => {
    const ok = urls.map((u, i) => checkUrl(u, `${path}[${i}]`)).every(Boolean);
    if (!ok) return undefined;
    if (new Set(urls.map((u) => u.startsWith("rediss:"))).size > 1) {
      problems.push(`${path}: use rediss:// for every URL or for none`);
      return undefined;
    }
    return urls.map((u) => new Secret(u));
  };
  const password =
    raw.passwordEnv === undefined
      ? undefined
      : fromEnv(raw.passwordEnv, "redis.passwordEnv", ctx.env, problems);
  if (raw.cluster !== undefined) {
    const nodes = checkUrls(raw.cluster, "redis.cluster");
    return (
      nodes && { kind: "cluster", nodes, password: password === undefined ? undefined : new Secret(password) }
    );
  }
  if (raw.sentinels !== undefined && raw.name !== undefined) {
    const sentinels = checkUrls(raw.sentinels, "redis.sentinels");
    return (
      sentinels && {
        kind: "sentinel",
        sentinels,
        name: raw.name,
        password: password === undefined ? undefined : new Secret(password),
      }
    );
  }
  const url = raw.url ?? fromEnv(raw.urlEnv, "redis.urlEnv", ctx.env, problems);
  if (url === undefined) return undefined;
  if (!/^rediss?:\/\//.test(url)) {
    problems.push(
      `${raw.url !== undefined ? "redis.url" : "redis.urlEnv"}: must start with redis:// or rediss://`,
    );
    return undefined;
  }
  return { kind: "standalone", url: new Secret(url) };
}

function resolveClientAuth(raw: RawConfig, baseDir: string, problems: string[]): ClientAuthConfig {
  const a = raw.clientAuth;
  let htpasswd: ClientAuthConfig["htpasswd"];
  if (a.htpasswd !== undefined) {
    const path = resolve(baseDir, a.htpasswd);
    try {
      const parsed = parseHtpasswd(readFileSync(path, "utf8"));
      for (const p of parsed.problems) problems.push(`clientAuth.htpasswd: ${a.htpasswd}: ${p}`);
      if (parsed.problems.length === 0 && parsed.entries.length === 0)
        problems.push(`clientAuth.htpasswd: ${a.htpasswd} has no users (add one with \`htpasswd -B\`)`);
      htpasswd = { path, entries: parsed.entries };
    } catch (err) {
      problems.push(
        `clientAuth.htpasswd: cannot read ${a.htpasswd} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
  }
  let jwt: ClientAuthConfig["jwt"];
  if (a.jwt) {
    const j = a.jwt;
    const jwks =
      j.jwksPath === undefined
        ? undefined
        : readJwks(j.jwksPath, "clientAuth.jwt.jwksPath", baseDir, problems);
    if (j.jwksUrl !== undefined && !/^https?:\/\//.test(j.jwksUrl))
      problems.push("clientAuth.jwt.jwksUrl: must be https:// (or http://)");
    jwt = {
      jwksUrl: j.jwksUrl,
      jwks,
      jwksTimeoutMs: j.jwksTimeoutMs,
      issuer: j.issuer,
      audience: j.audience,
      subjectClaim: j.subjectClaim,
      maxLifetimeSeconds: j.maxLifetimeSeconds,
    };
  }
  const authenticates = a.htpasswd !== undefined || a.jwt !== undefined;
  if (a.open && authenticates)
    problems.push(
      "clientAuth.open: true turns client authentication off; remove it, or remove clientAuth.htpasswd and clientAuth.jwt",
    );
  if (!authenticates) {
    const lists = [
      ...(raw.defaults.pull !== undefined ? ["defaults.pull"] : []),
      ...Object.entries(raw.projects)
        .filter(([, p]) => p.pull !== undefined)
        .map(([name]) => `projects.${name}.pull`),
    ];
    for (const path of lists)
      problems.push(
        `${path}: needs client authentication (clientAuth.htpasswd or clientAuth.jwt); without it every client is anonymous`,
      );
  }
  return { open: a.open, realm: a.realm, htpasswd, jwt };
}

/**
 * Upstream credentials (in any form: a password, a password file or a credential helper) let anyone who
 * reaches pullgate pull with its login. Unless clients authenticate (htpasswd or JWT), that must be said
 * explicitly with `clientAuth.open: true`.
 */
export function clientAuthProblems(config: {
  clientAuth: { open: boolean; htpasswd?: unknown; jwt?: unknown };
  upstreams: readonly { name: string; credentials?: unknown }[];
}): string[] {
  const a = config.clientAuth;
  if (a.open || a.htpasswd !== undefined || a.jwt !== undefined) return [];
  return config.upstreams.flatMap((u, i) =>
    u.credentials === undefined
      ? []
      : [
          `upstreams[${i}].credentials: without client authentication anyone who reaches pullgate pulls from ${JSON.stringify(u.name)} with this login; configure clientAuth.htpasswd or clientAuth.jwt, or set clientAuth.open: true to accept that`,
        ],
  );
}

export function parseListen(value: string, path: string, problems: string[]): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    problems.push(
      `${path}: expected "host:port" (e.g. "127.0.0.1:5050" or "[::1]:5050"), got ${JSON.stringify(value)}`,
    );
    return undefined;
  }
  const host = m[1] ?? (m[2] === "" ? "0.0.0.0" : (m[2] as string));
  return { host, port };
}

/** The certificate and key must be readable and form a usable pair now; later changes are reloaded. */
function resolveTls(
  raw: { cert: string; key: string; reloadIntervalMs: number },
  baseDir: string,
  problems: string[],
): TlsConfig {
  const tls = {
    certPath: resolve(baseDir, raw.cert),
    keyPath: resolve(baseDir, raw.key),
    reloadIntervalMs: raw.reloadIntervalMs,
  };
  let cert: string | undefined;
  let key: string | undefined;
  try {
    cert = readFileSync(tls.certPath, "utf8");
  } catch (err) {
    problems.push(`tls.cert: cannot read ${raw.cert} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  try {
    key = readFileSync(tls.keyPath, "utf8");
  } catch (err) {
    problems.push(`tls.key: cannot read ${raw.key} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (cert !== undefined && key !== undefined) {
    try {
      createSecureContext({ cert, key });
    } catch {
      problems.push("tls: the certificate and key are not a valid PEM pair");
    }
  }
  return tls;
}

function resolveUpstream(
  raw: RawConfig["upstreams"][number],
  path: string,
  ctx: { baseDir: string; env: NodeJS.ProcessEnv },
  problems: string[],
): UpstreamConfig {
  let origin = raw.url;
  let host = "";
  try {
    const url = new URL(raw.url);
    if (url.protocol !== "http:" && url.protocol !== "https:")
      problems.push(`${path}.url: must be http:// or https://`);
    if (
      (url.pathname !== "/" && url.pathname !== "") ||
      url.search ||
      url.hash ||
      url.username ||
      url.password
    ) {
      problems.push(
        `${path}.url: must be an origin (scheme://host[:port]) without path, query or credentials`,
      );
    }
    origin = url.origin;
    host = url.host;
  } catch {
    problems.push(`${path}.url: not a valid URL`);
  }
  const registry = (raw.registry ?? host).toLowerCase();
  if (raw.registry !== undefined && !/^[a-z0-9.-]+(?::\d{1,5})?$/.test(registry)) {
    problems.push(`${path}.registry: must be a registry host like "docker.io" or "ghcr.io"`);
  }
  return {
    name: raw.name,
    url: origin,
    registry,
    pathPrefix: raw.pathPrefix,
    default: raw.default,
    credentials: raw.credentials
      ? resolveCredentials(raw.credentials, `${path}.credentials`, host, ctx, problems)
      : undefined,
    redirects: raw.redirects,
    connections: raw.connections,
    apiConnections: raw.apiConnections,
    redirectOrigins: raw.redirectOrigins.map((o, i) =>
      toOrigin(o, `${path}.redirectOrigins[${i}]`, problems),
    ),
    tokenRealms: (raw.tokenRealms ?? (registry === "docker.io" ? ["https://auth.docker.io"] : [])).map(
      (o, i) => toOrigin(o, `${path}.tokenRealms[${i}]`, problems),
    ),
    timeouts: { ...raw.timeouts },
  };
}

/** An origin as configured ("https://host[:port]"), normalized; a problem when it is anything else. */
function toOrigin(value: string, path: string, problems: string[]): string {
  try {
    const url = new URL(value);
    if ((url.protocol === "http:" || url.protocol === "https:") && url.origin === value.replace(/\/$/, "")) {
      return url.origin;
    }
  } catch {
    // reported below
  }
  problems.push(
    `${path}: must be an origin like "https://storage.example.com" (scheme, host, optional port)`,
  );
  return value;
}

/** The server URL Docker's credential store knows Docker Hub by; every other registry goes by its host[:port]. */
const DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/**
 * Fixed logins are resolved here; a password file is checked readable (and read again when used); a
 * credential helper is only named here: loading a config (and so `serve --check`) never runs it.
 */
function resolveCredentials(
  raw: NonNullable<RawConfig["upstreams"][number]["credentials"]>,
  path: string,
  upstreamHost: string,
  ctx: { baseDir: string; env: NodeJS.ProcessEnv },
  problems: string[],
): UpstreamCredentialsConfig | undefined {
  if (raw.helper !== undefined) {
    return {
      kind: "helper",
      helper: raw.helper,
      serverUrl:
        raw.serverUrl ??
        (DOCKER_HUB_HOSTS.has(upstreamHost.toLowerCase()) ? DOCKER_HUB_SERVER_URL : upstreamHost),
      timeoutMs: raw.timeoutMs ?? DEFAULT_CREDENTIAL_HELPER_TIMEOUT_MS,
      cacheSeconds: raw.cacheSeconds ?? DEFAULT_CREDENTIAL_HELPER_CACHE_SECONDS,
    };
  }
  const username = raw.username ?? fromEnv(raw.usernameEnv, `${path}.usernameEnv`, ctx.env, problems);
  if (raw.passwordFile !== undefined) {
    const passwordFile = resolve(ctx.baseDir, raw.passwordFile);
    try {
      readFileSync(passwordFile, "utf8");
    } catch (err) {
      problems.push(`${path}.passwordFile: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
      return undefined;
    }
    return username === undefined ? undefined : { kind: "passwordFile", username, passwordFile };
  }
  let password: string | undefined = raw.password;
  if (raw.passwordEnv !== undefined)
    password = fromEnv(raw.passwordEnv, `${path}.passwordEnv`, ctx.env, problems);
  if (username === undefined || password === undefined) return undefined;
  return { kind: "password", username, password: new Secret(password) };
}

/** Headers an alert webhook may not set: HTTP framing, and what pullgate sets itself. */
const RESERVED_ALERT_HEADERS = new Set([
  "host",
  "content-length",
  "content-type",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "expect",
]);

/**
 * Alert webhooks: URLs (from env with urlEnv) must be https://, or http:// to a loopback address or with
 * allowHttp. A URL may carry a secret (Slack's do): no problem message ever quotes it.
 */
function resolveAlerts(raw: RawConfig["alerts"], env: NodeJS.ProcessEnv, problems: string[]): AlertsConfig {
  const webhooks: AlertWebhookConfig[] = [];
  const names = new Set<string>();
  raw.webhooks.forEach((w, i) => {
    const path = `alerts.webhooks[${i}]`;
    if (names.has(w.name)) problems.push(`${path}.name: duplicate webhook name ${JSON.stringify(w.name)}`);
    names.add(w.name);
    const where = w.url !== undefined ? `${path}.url` : `${path}.urlEnv`;
    const url = w.url ?? fromEnv(w.urlEnv, where, env, problems);
    if (url !== undefined) {
      const problem = alertUrlProblem(url, w.allowHttp);
      if (problem) problems.push(`${where}: ${problem}`);
    }
    const headers: Record<string, Secret> = {};
    const seen = new Set<string>();
    for (const [header, variable] of Object.entries(w.headersEnv)) {
      const lower = header.toLowerCase();
      if (RESERVED_ALERT_HEADERS.has(lower))
        problems.push(`${path}.headersEnv.${header}: not a header to set`);
      if (seen.has(lower)) problems.push(`${path}.headersEnv.${header}: given twice`);
      seen.add(lower);
      const value = fromEnv(variable, `${path}.headersEnv.${header}`, env, problems);
      if (value !== undefined && /[\r\n\0]/.test(value))
        problems.push(`${path}.headersEnv.${header}: environment variable ${variable} holds a line break`);
      else if (value !== undefined) headers[header] = new Secret(value);
    }
    webhooks.push({
      name: w.name,
      url: new Secret(url ?? ""),
      format: w.format,
      headers,
      projects: w.projects === undefined ? undefined : [...new Set(w.projects)],
      events: w.events,
      batchMs: Math.round(w.batchSeconds * 1000),
      minIntervalMs: Math.round(w.minIntervalSeconds * 1000),
      maxBatchSize: w.maxBatchSize,
      queueSize: w.queueSize,
      timeoutMs: w.timeoutMs,
      giveUpMs: Math.round(w.giveUpSeconds * 1000),
    });
  });
  return {
    webhooks,
    unavailable: {
      threshold: raw.unavailable.threshold,
      windowMs: raw.unavailable.windowSeconds * 1000,
    },
    shutdownFlushMs: raw.shutdownFlushMs,
  };
}

/** Why an alert webhook URL cannot be used, in words that never quote it; undefined when it can. */
function alertUrlProblem(value: string, allowHttp: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "not a valid URL";
  }
  if (url.username || url.password)
    return "must not carry a username or password (send a token with headersEnv)";
  if (url.hash) return "must not have a #fragment";
  if (url.protocol === "https:") return undefined;
  if (url.protocol !== "http:") return "must be https://";
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const loopback = host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
  if (loopback || allowHttp) return undefined;
  return "must be https:// (http:// only to a loopback address, or with allowHttp: true)";
}

/** Minimum length of redis.hmacKey*, in bytes (UTF-8). */
export const MIN_REDIS_HMAC_KEY_BYTES = 32;

/** The Redis HMAC key from its env var or file; its value never appears in a problem. */
function resolveRedisHmacKey(
  raw: { hmacKeyEnv?: string | undefined; hmacKeyFile?: string | undefined },
  ctx: { baseDir: string; env: NodeJS.ProcessEnv },
  problems: string[],
): string | undefined {
  let key: string | undefined;
  let path: string;
  if (raw.hmacKeyEnv !== undefined) {
    path = "redis.hmacKeyEnv";
    key = fromEnv(raw.hmacKeyEnv, path, ctx.env, problems);
  } else if (raw.hmacKeyFile !== undefined) {
    path = "redis.hmacKeyFile";
    try {
      key = readFileSync(resolve(ctx.baseDir, raw.hmacKeyFile), "utf8").trim();
    } catch (err) {
      problems.push(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
      return undefined;
    }
  } else {
    return undefined; // reported by the schema
  }
  if (key !== undefined && Buffer.byteLength(key, "utf8") < MIN_REDIS_HMAC_KEY_BYTES) {
    problems.push(
      `${path}: the key must be at least ${MIN_REDIS_HMAC_KEY_BYTES} bytes (e.g. \`openssl rand -hex 32\`)`,
    );
    return undefined;
  }
  return key;
}

function fromEnv(
  name: string | undefined,
  path: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
): string | undefined {
  if (name === undefined) return undefined;
  const value = env[name];
  if (value === undefined || value === "") {
    problems.push(`${path}: environment variable ${name} is not set`);
    return undefined;
  }
  return value;
}

function checkUnique<T>(
  items: readonly T[],
  key: (item: T) => string | undefined,
  field: string,
  problems: string[],
): void {
  const seen = new Set<string>();
  for (const item of items) {
    const k = key(item);
    if (k === undefined) continue;
    if (seen.has(k)) problems.push(`upstreams: duplicate ${field} ${JSON.stringify(k)}`);
    seen.add(k);
  }
}

function deepFreeze<T>(value: T): T {
  // Plain data only: Secrets, parsed keys (KeyObject), trusted roots, compiled patterns and maps are
  // objects of their own with internal state, left as they are.
  if (value && typeof value === "object" && !Object.isFrozen(value) && isPlainData(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function isPlainData(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === Array.prototype || proto === null;
}
