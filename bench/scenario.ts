import type { Redis } from "ioredis";
import type { SigningKey } from "../src/local/index.ts";
import type { SmallImage } from "./images.ts";
import type { MetricsDelta, Scrape } from "./metrics.ts";
import type { BenchImage, PullgateServer, Server } from "./servers.ts";

export const DIRECT = "direct";
export const PULLGATE = "pullgate";
export const PULLGATE_ENFORCE = "pullgate-enforce";
export const NGINX = "nginx";
export const REGISTRY_PROXY = "registry-proxy";

/** containerd's Accept list for manifests. */
export const CONTAINERD_ACCEPT =
  "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

/** What a process does on a target's request path (a CPU column). */
export type Role = "proxy" | "registry" | "redis";
export const ROLES: readonly Role[] = ["proxy", "registry", "redis"];

/** A base URL the scenarios are run against, and the sampled processes that serve its requests. */
export type Target = {
  name: string;
  baseUrl: string;
  /** Role -> sampled process name (Env.processes) on this target's request path. */
  roles: Partial<Record<Role, string>>;
  /** The pullgate process on the path, if any (read at each run: some scenarios restart it). */
  pullgate?: () => PullgateServer;
};

export type Metric = { key: string; label: string; decimals: number };

export type Measurement = {
  /** Values for the scenario's metrics, by Metric.key (a metric may be missing for some targets). */
  values: Record<string, number>;
  /** Units of work the CPU columns divide by: pulls or requests (see Scenario.cpu), or bytes for "GiB". */
  units: number;
  durationS: number;
  /** CPU of the load generator(s) over the run, in seconds. */
  clientCpuS: number;
  /** Details kept in the results file. */
  raw?: unknown;
};

/** One measured run of one scenario against one target (what bench/results/*.json holds per run). */
export type RunRecord = {
  scenario: string;
  target: string;
  run: number;
  startedAt: string;
  wallS: number;
  units: number;
  durationS: number;
  /** Scenario metrics plus the CPU metrics. */
  values: Record<string, number>;
  /** CPU seconds over the run: each sampled process, the load generator, the whole machine and the rest. */
  cpuS: Record<string, number>;
  /** Access-log lines pullgate wrote during the run. */
  accessLogLines?: number;
  /** Manifest decisions pullgate logged during the run (audit lines), by "outcome/tier". */
  decisions?: Record<string, number>;
  /** From pullgate's /metrics, before and after the run. */
  metrics?: MetricsDelta;
  raw?: unknown;
};

/** `projects:` and `trustedRoots:` of a pullgate config. */
export type PullgatePolicy = {
  projects: Record<string, unknown>;
  trustedRoots?: Record<string, { path: string }>;
};

/** The bench's world: servers, data sets and helpers, built once by run.ts. */
export type Env = {
  tmp: string;
  /** Scratch dir for tool inputs and outputs. */
  scratch: string;
  /** Clock ticks per second (/proc CPU fields). */
  ticks: number;
  image: BenchImage;
  key: SigningKey;
  /** `projects:` of every enforcing pullgate. */
  projects: Record<string, unknown>;
  registry: Server;
  redisUrl: string;
  redis: Redis;
  targets: Record<
    typeof DIRECT | typeof PULLGATE | typeof PULLGATE_ENFORCE | typeof NGINX | typeof REGISTRY_PROXY,
    Target
  >;
  /** The current pullgate-enforce process. */
  enforce(): PullgateServer;
  /** Stops pullgate-enforce, FLUSHALL, starts a new process on the same URL. */
  restartEnforce(): Promise<void>;
  /**
   * A pullgate process the caller stops (stopped on cleanup otherwise); sampled as `name`. `enforce`: the
   * `projects` above and Redis; `policy`: these projects and trusted roots instead, and Redis.
   */
  startPullgate(
    name: string,
    upstreamUrl: string,
    opts?: { enforce?: boolean; policy?: PullgatePolicy; listen?: string; nodeArgs?: string[] },
  ): Promise<PullgateServer>;
  /** A docker-registry the caller stops (stopped on cleanup otherwise); sampled as `name`. */
  startRegistry(
    name: string,
    opts: { storageDir?: string; inMemory?: boolean; accessLog?: boolean },
  ): Promise<Server>;
  stop(server: Server): Promise<void>;
  /** Sampled processes: name -> pids (read at each run). */
  processes: Map<string, () => number[]>;
  /** /metrics are used (BENCH_METRICS and whether pullgate serves them). */
  metricsOn: boolean;
  scrape(server: PullgateServer): Promise<Scrape | undefined>;
  /** Verdict keys in Redis. */
  redisVerdicts(): Promise<number>;
  sets: {
    /** Signed, tagged (proj/cold:c<i>): measured cold pulls. */
    cold: SmallImage[];
    /** Signed, tagged: pulled before each cold run to warm a fresh process up. */
    primers: SmallImage[];
    /** Signed, one per herd run (+1 for the check before the runs). */
    herd: SmallImage[];
    /** proj/unsigned:v1. */
    unsigned: SmallImage;
  };
  /** Facts scenarios record for the report and the results file, by scenario id. */
  facts: Record<string, Record<string, unknown>>;
  log(message: string): void;
};

export type Scenario = {
  id: string;
  /** Section in RESULTS.md (scenarios with the same section share its heading). */
  section: string;
  title: string;
  /** What is measured, for RESULTS.md. */
  about: string;
  /** How the load is generated, for RESULTS.md. */
  method: string;
  /** The run length for RESULTS.md ("10 s runs", "200 pulls per run"). */
  runLength(durationS: number): string;
  /** Targets in run order, the baseline first. */
  targets(env: Env): Target[];
  /** The target the "×" column divides by (default the first). */
  baseline?: string;
  metrics: Metric[];
  /** CPU columns: µs per unit of work, or CPU-seconds per GiB; none for scenarios whose CPU means nothing. */
  cpu?: "pull" | "request" | "GiB";
  /** This scenario's run length from BENCH_DURATION_S (default: the same). */
  durationS?(base: number): number;
  /** Warm-up load per target before the runs, in seconds (default 0). */
  warmupS?: number;
  /** Once, before anything else of this scenario (data sets, processes). */
  setup?(env: Env): Promise<void>;
  /** Per target, before the warm-up: checks the target answers what it should. */
  verify?(target: Target, env: Env): Promise<void>;
  /** Before each measured run, outside the measurement. */
  beforeRun?(target: Target, env: Env, run: number): Promise<void>;
  measure(target: Target, durationS: number, env: Env, run: number): Promise<Measurement>;
  /** After each measured run: throws when the run did not measure what it should have. */
  checkRun?(target: Target, record: RunRecord, env: Env): Promise<void>;
  /** Lines printed under the scenario's table. */
  notes?(records: RunRecord[], env: Env): string[];
  /** Once, after the runs. */
  teardown?(env: Env): Promise<void>;
};

export function expect(cond: boolean, target: { name: string; baseUrl: string }, what: string): void {
  if (!cond) throw new Error(`${target.name} (${target.baseUrl}): ${what}`);
}

/** Checks one manifest answer of `target` for the bench image (headers; bytes for GET). */
export async function verifyManifest(
  target: Target,
  env: Env,
  method: "GET" | "HEAD",
  path: string,
): Promise<void> {
  const res = await fetch(`${target.baseUrl}${path}`, {
    method,
    headers: { accept: CONTAINERD_ACCEPT },
    signal: AbortSignal.timeout(10_000),
  });
  const body = Buffer.from(await res.arrayBuffer());
  const { image } = env;
  expect(res.status === 200, target, `${method} ${path} answered ${res.status}`);
  expect(res.headers.get("content-type") === image.manifestMediaType, target, "wrong manifest Content-Type");
  expect(
    res.headers.get("docker-content-digest") === image.manifestDigest,
    target,
    "wrong Docker-Content-Digest",
  );
  expect(
    res.headers.get("content-length") === String(image.manifestBytes.length),
    target,
    "wrong manifest Content-Length",
  );
  if (method === "GET")
    expect(body.equals(image.manifestBytes), target, "manifest bytes differ from the pushed ones");
}

/** Median of values (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Median over the runs of one target of a value. */
export function medianOf(records: readonly RunRecord[], target: string, key: string): number | undefined {
  const values = records
    .filter((r) => r.target === target)
    .map((r) => r.values[key])
    .filter((v): v is number => v !== undefined);
  return values.length === 0 ? undefined : median(values);
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Decisions (audit lines) of a run: outcome counts regardless of tier, and "verified" (fresh lookup) ones. */
export function decisionCounts(record: RunRecord): {
  allow: number;
  deny: number;
  other: number;
  verified: number;
} {
  let allow = 0;
  let deny = 0;
  let other = 0;
  let verified = 0;
  for (const [key, n] of Object.entries(record.decisions ?? {})) {
    const [outcome, tier] = key.split("/");
    if (outcome === "allow") allow += n;
    else if (outcome === "deny") deny += n;
    else other += n;
    if (tier === "verified") verified += n;
  }
  return { allow, deny, other, verified };
}

/** A positive integer from the environment (BENCH_RUNS, BENCH_DURATION_S, …), else `fallback`. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new Error(`${name} must be a positive integer, got ${raw}`);
  return Number(raw);
}
