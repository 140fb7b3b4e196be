import { join } from "node:path";
import { percentile, type SequentialResponse, sequentialGets } from "./client.ts";
import type { SmallImage } from "./images.ts";
import type { RunRecord } from "./report.ts";
import type { RoundTrips } from "./round-trips.ts";
import { type BenchImage, digestBody, REPOSITORY, TAG } from "./servers.ts";
import { type LoadResult, runAbHead, runWrk } from "./tools.ts";

export const DIRECT = "direct";
export const PULLGATE = "pullgate";
export const PULLGATE_ENFORCE = "pullgate-enforce";

/** A base URL the scenarios are run against, and the sampled processes that serve its requests. */
export type Target = {
  name: string;
  baseUrl: string;
  /**
   * Roles of the sampled processes (see run.ts) on this target's request path, for the CPU columns: "pullgate",
   * "registry", "redis". The role names the column; `servers` says which process plays it.
   */
  processes: string[];
  /** Role -> sampled process, where they differ (the enforce target's "pullgate" is process "pullgate-enforce"). */
  servers?: Record<string, string>;
  /** A log that gets one `"event":"access"` line per request; runs fail if it stays empty. */
  accessLogFile?: string;
};

export type Metric = {
  key: string;
  label: string;
  decimals: number;
};

/** What the cold-pull scenario needs from run.ts. */
export type ColdContext = {
  /** The images measured: each GET once per run, by digest. */
  images: SmallImage[];
  /** Other signed images, GET through a fresh pullgate-enforce before each run (untimed). */
  primers: SmallImage[];
  /** Stops pullgate-enforce, empties Redis (FLUSHALL), starts a new pullgate-enforce process (same URL). */
  restartEnforce(): Promise<void>;
  /** FLUSHALL. */
  flushRedis(): Promise<void>;
  /** Verdicts stored in Redis. */
  redisVerdicts(): Promise<number>;
  /**
   * Pulls `images` once each through a separate fresh pullgate-enforce whose upstream is a second docker-registry
   * (same storage) with its access log on, and once each against that registry directly; counts the requests.
   */
  countRoundTrips(images: SmallImage[]): Promise<RoundTrips>;
  /** Set by the scenario's verify step. */
  roundTrips?: RoundTrips;
};

export type ScenarioContext = {
  image: BenchImage;
  /** Scratch dir for tool output files. */
  dir: string;
  cold: ColdContext;
};

export type Measurement = {
  load: LoadResult;
  /** Values for the scenario's metrics, by Metric.key. */
  values: Record<string, number>;
};

export type Scenario = {
  id: string;
  title: string;
  /** One sentence for RESULTS.md: what is measured. */
  about?: string;
  /** How the load is generated, for RESULTS.md (the run length is appended). */
  method: string;
  /** Names of the targets this scenario is run against, in run order (the baseline first). */
  targets: string[];
  metrics: Metric[];
  /** CPU columns: µs per request, or CPU-seconds per GiB of response bodies. */
  cpuPer: "request" | "GiB";
  /** Caps BENCH_DURATION_S for this scenario (keeps the whole bench near 10 minutes). */
  maxDurationS?: number;
  /** For RESULTS.md when the run is a fixed amount of work rather than a duration. */
  runLength?: string;
  /** false: no warm-up load before the runs (default true). */
  warmup?: boolean;
  /** One request checked in full before any load, so a broken target fails fast instead of benchmarking errors. */
  verify(target: Target, ctx: ScenarioContext): Promise<void>;
  /** Before each measured run, outside the measurement (CPU is not sampled). */
  beforeRun?(target: Target, ctx: ScenarioContext): Promise<void>;
  measure(target: Target, durationS: number, ctx: ScenarioContext): Promise<Measurement>;
  /** After each measured run: throws when the run did not measure what it should have. */
  checkRun?(target: Target, record: RunRecord, ctx: ScenarioContext): Promise<void>;
  /** Lines printed under the scenario's table in RESULTS.md. */
  notes?(records: RunRecord[], ctx: ScenarioContext): string[];
};

/** containerd's Accept list for manifests. */
export const CONTAINERD_ACCEPT =
  "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

const MANIFEST_PATH = `/v2/${REPOSITORY}/manifests/${TAG}`;
const MIB = 1024 * 1024;

const rateMetrics: Metric[] = [
  { key: "reqPerS", label: "req/s", decimals: 0 },
  { key: "p50Ms", label: "p50 ms", decimals: 2 },
  { key: "p99Ms", label: "p99 ms", decimals: 2 },
];

function rateValues(load: LoadResult): Record<string, number> {
  return { reqPerS: load.requests / load.durationS, p50Ms: load.p50Ms, p99Ms: load.p99Ms };
}

function expect(cond: boolean, target: Target, what: string): void {
  if (!cond) throw new Error(`${target.name} (${target.baseUrl}): ${what}`);
}

async function verifyManifest(
  target: Target,
  ctx: ScenarioContext,
  method: "GET" | "HEAD",
  path = MANIFEST_PATH,
): Promise<void> {
  const res = await fetch(`${target.baseUrl}${path}`, {
    method,
    headers: { accept: CONTAINERD_ACCEPT },
    signal: AbortSignal.timeout(10_000),
  });
  const body = Buffer.from(await res.arrayBuffer());
  const { image } = ctx;
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

function manifestGet(connections: number): Scenario {
  return {
    id: `manifest-get-c${connections}`,
    title: `Manifest GET by tag, ${connections} connection${connections === 1 ? "" : "s"}`,
    method: `wrk -t1 -c${connections}, GET ${MANIFEST_PATH} with containerd's Accept list`,
    targets: [DIRECT, PULLGATE, PULLGATE_ENFORCE],
    metrics: rateMetrics,
    cpuPer: "request",
    verify: (target, ctx) => verifyManifest(target, ctx, "GET"),
    checkRun: expectOnlyCachedVerdicts,
    measure: async (target, durationS) => {
      const load = await runWrk({
        url: `${target.baseUrl}${MANIFEST_PATH}`,
        connections,
        durationS,
        headers: [`Accept: ${CONTAINERD_ACCEPT}`],
      });
      return { load, values: rateValues(load) };
    },
  };
}

function manifestHead(connections: number): Scenario {
  return {
    id: `manifest-head-c${connections}`,
    title: `Manifest HEAD by tag, ${connections} connections`,
    method: `ab -k -i -c ${connections}, HEAD ${MANIFEST_PATH} with containerd's Accept list`,
    targets: [DIRECT, PULLGATE, PULLGATE_ENFORCE],
    metrics: rateMetrics,
    cpuPer: "request",
    verify: (target, ctx) => verifyManifest(target, ctx, "HEAD"),
    checkRun: expectOnlyCachedVerdicts,
    measure: async (target, durationS, ctx) => {
      const load = await runAbHead({
        url: `${target.baseUrl}${MANIFEST_PATH}`,
        connections,
        durationS,
        headers: [`Accept: ${CONTAINERD_ACCEPT}`],
        csvFile: join(ctx.dir, "ab-percentiles.csv"),
      });
      return { load, values: rateValues(load) };
    },
  };
}

function blobGet(): Scenario {
  return {
    id: "blob-get-c1",
    title: "50 MiB blob GET, 1 connection",
    method: "wrk -t1 -c1, GET /v2/proj/app/blobs/<layer digest> (50 MiB, incompressible)",
    targets: [DIRECT, PULLGATE],
    metrics: [
      { key: "mibPerS", label: "MiB/s", decimals: 0 },
      { key: "p50Ms", label: "p50 ms", decimals: 1 },
      { key: "p99Ms", label: "p99 ms", decimals: 1 },
    ],
    cpuPer: "GiB",
    verify: async (target, ctx) => {
      const path = `/v2/${REPOSITORY}/blobs/${ctx.image.blobDigest}`;
      const res = await fetch(`${target.baseUrl}${path}`, { signal: AbortSignal.timeout(60_000) });
      expect(res.status === 200, target, `GET ${path} answered ${res.status}`);
      expect(
        res.headers.get("content-length") === String(ctx.image.blobSize),
        target,
        "wrong blob Content-Length",
      );
      const { digest, length } = await digestBody(res);
      expect(
        length === ctx.image.blobSize,
        target,
        `blob body has ${length} bytes, not ${ctx.image.blobSize}`,
      );
      expect(digest === ctx.image.blobDigest, target, `blob body hashes to ${digest}`);
    },
    measure: async (target, durationS, ctx) => {
      const { blobSize, blobDigest } = ctx.image;
      const load = await runWrk({
        url: `${target.baseUrl}/v2/${REPOSITORY}/blobs/${blobDigest}`,
        connections: 1,
        durationS,
      });
      // wrk completes a response only once Content-Length body bytes were read; its byte counter also holds
      // the headers and the one response still in flight when the run ended (one connection).
      const headerAllowance = 4096;
      expect(
        load.bytes >= load.requests * blobSize &&
          load.bytes <= (load.requests + 1) * (blobSize + headerAllowance),
        target,
        `wrk read ${load.bytes} bytes for ${load.requests} blobs of ${blobSize} bytes`,
      );
      return {
        load,
        values: { mibPerS: load.bytes / MIB / load.durationS, p50Ms: load.p50Ms, p99Ms: load.p99Ms },
      };
    },
  };
}

/** Decisions pullgate logged in a run (audit lines), by "outcome" or "outcome/tier". */
function decisions(record: RunRecord): Record<string, number> {
  return record.decisions ?? {};
}

/** A warm scenario on pullgate-enforce: every decision must come from the memory cache (no lookup). */
async function expectOnlyCachedVerdicts(target: Target, record: RunRecord): Promise<void> {
  if (target.name !== PULLGATE_ENFORCE) return;
  const d = decisions(record);
  const others = Object.entries(d).filter(([k]) => k !== "allow/memory");
  expect(others.length === 0, target, `decisions other than allow/memory: ${JSON.stringify(d)}`);
}

function manifestGetByDigest(connections: number): Scenario {
  const path = (ctx: ScenarioContext) => `/v2/${REPOSITORY}/manifests/${ctx.image.manifestDigest}`;
  return {
    id: `manifest-get-digest-c${connections}`,
    title: `Warm manifest GET by digest, ${connections} connection${connections === 1 ? "" : "s"}`,
    about:
      "Measures the GET containerd sends after resolving a tag (by digest), for an image whose verdict " +
      "pullgate-enforce already holds in memory: one upstream manifest GET plus a cache hit, no signature lookup " +
      "(the runs fail if any decision is not an allow from memory).",
    method: `wrk -t1 -c${connections}, GET /v2/${REPOSITORY}/manifests/<manifest digest> with containerd's Accept list`,
    targets: [DIRECT, PULLGATE, PULLGATE_ENFORCE],
    metrics: rateMetrics,
    cpuPer: "request",
    maxDurationS: 5,
    verify: (target, ctx) => verifyManifest(target, ctx, "GET", path(ctx)),
    checkRun: expectOnlyCachedVerdicts,
    measure: async (target, durationS, ctx) => {
      const load = await runWrk({
        url: `${target.baseUrl}${path(ctx)}`,
        connections,
        durationS,
        headers: [`Accept: ${CONTAINERD_ACCEPT}`],
      });
      return { load, values: rateValues(load) };
    },
  };
}

const COLD_ACCEPT = { accept: CONTAINERD_ACCEPT };

function coldPaths(images: readonly SmallImage[]): string[] {
  return images.map((i) => `/v2/${i.repository}/manifests/${i.digest}`);
}

/** Checks a cold GET answered the image's exact manifest. */
function checkImage(target: Target, images: readonly SmallImage[]): (res: SequentialResponse) => void {
  const byPath = new Map(images.map((i) => [`/v2/${i.repository}/manifests/${i.digest}`, i]));
  return (res) => {
    const image = byPath.get(res.path);
    expect(res.status === 200, target, `GET ${res.path} answered ${res.status}`);
    expect(
      image !== undefined && res.digest === image.digest,
      target,
      `GET ${res.path}: wrong manifest bytes`,
    );
    expect(
      res.contentType === "application/vnd.oci.image.manifest.v1+json",
      target,
      `GET ${res.path}: Content-Type ${res.contentType}`,
    );
  };
}

function ms(v: number): string {
  return v.toFixed(2);
}

function medianOf(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function coldManifestGet(count: number, primers: number): Scenario {
  const latencyMetrics: Metric[] = [
    { key: "p50Ms", label: "p50 ms", decimals: 2 },
    { key: "p90Ms", label: "p90 ms", decimals: 2 },
    { key: "p99Ms", label: "p99 ms", decimals: 2 },
    { key: "maxMs", label: "max ms", decimals: 2 },
  ];
  return {
    id: "manifest-get-cold-c1",
    title: "Cold manifest GET (first pull, verdict not cached), 1 connection",
    about:
      `Measures the latency of the first pull of an image: ${count} different signed images, each GET once by ` +
      "digest per run, with neither pullgate-enforce's memory nor Redis holding a verdict for any of them, so " +
      "every GET is a full signature lookup and verification (the runs fail unless all " +
      `${count} decisions are fresh verifications and Redis holds ${count} verdicts afterwards).`,
    method:
      `Node client (undici Client, one keep-alive connection), ${count} sequential GETs /v2/proj/cold/manifests/<digest> ` +
      "with containerd's Accept list, each image once per run, latency from request to last body byte. " +
      "Before each pullgate-enforce run (untimed): a new pullgate-enforce process, FLUSHALL, " +
      `${primers} other signed images pulled through it (warms its JIT and upstream connections), FLUSHALL again`,
    runLength: `${count} GETs per run`,
    targets: [DIRECT, PULLGATE_ENFORCE],
    metrics: latencyMetrics,
    cpuPer: "request",
    warmup: false,
    verify: async (target, ctx) => {
      const { cold } = ctx;
      const all = [...cold.primers, ...cold.images];
      if (target.name === PULLGATE_ENFORCE) {
        cold.roundTrips = await cold.countRoundTrips(cold.images);
        await cold.restartEnforce();
      }
      // Every image once through the target: checks them all, and warms the registry's own caches for every
      // file a pull reads, so that the first run does not pay for them.
      await sequentialGets({
        baseUrl: target.baseUrl,
        paths: coldPaths(all),
        headers: COLD_ACCEPT,
        check: checkImage(target, all),
      });
    },
    beforeRun: async (target, ctx) => {
      const { cold } = ctx;
      if (target.name === PULLGATE_ENFORCE) await cold.restartEnforce();
      await sequentialGets({
        baseUrl: target.baseUrl,
        paths: coldPaths(cold.primers),
        headers: COLD_ACCEPT,
        check: checkImage(target, cold.primers),
      });
      if (target.name === PULLGATE_ENFORCE) {
        await cold.flushRedis();
        expect((await cold.redisVerdicts()) === 0, target, "Redis not empty after FLUSHALL");
      }
    },
    measure: async (target, _durationS, ctx) => {
      const { images } = ctx.cold;
      const r = await sequentialGets({
        baseUrl: target.baseUrl,
        paths: coldPaths(images),
        headers: COLD_ACCEPT,
        check: checkImage(target, images),
      });
      const load: LoadResult = {
        requests: images.length,
        bytes: r.bytes,
        durationS: r.durationS,
        p50Ms: percentile(r.latenciesMs, 50),
        p99Ms: percentile(r.latenciesMs, 99),
        clientCpuTicks: 0, // set by run.ts from clientCpuS (this process)
        raw: { clientCpuS: r.cpuS, latenciesMs: r.latenciesMs.map((v) => Math.round(v * 1000) / 1000) },
      };
      return {
        load,
        values: {
          p50Ms: load.p50Ms,
          p90Ms: percentile(r.latenciesMs, 90),
          p99Ms: load.p99Ms,
          maxMs: Math.max(...r.latenciesMs),
        },
      };
    },
    checkRun: async (target, record, ctx) => {
      if (target.name !== PULLGATE_ENFORCE) return;
      const n = ctx.cold.images.length;
      const d = decisions(record);
      expect(
        d["allow/verified"] === n && Object.keys(d).length === 1,
        target,
        `expected ${n} fresh verifications, got ${JSON.stringify(d)}`,
      );
      const stored = await ctx.cold.redisVerdicts();
      expect(stored === n, target, `Redis holds ${stored} verdicts after ${n} cold pulls`);
    },
    notes: (records, ctx) => {
      const med = (target: string, key: string) =>
        medianOf(records.filter((r) => r.target === target).map((r) => r.values[key] as number));
      const added = (key: string) => med(PULLGATE_ENFORCE, key) - med(DIRECT, key);
      const lines = [
        `Added latency of a cold pull through pullgate-enforce (median over runs of pullgate-enforce minus median ` +
          `of direct): p50 +${ms(added("p50Ms"))} ms, p90 +${ms(added("p90Ms"))} ms, p99 +${ms(added("p99Ms"))} ms.`,
      ];
      const rt = ctx.cold.roundTrips;
      if (rt) {
        lines.push(
          "",
          `Upstream requests per cold pull, counted from the access log of a second docker-registry on the same ` +
            `storage (log on only there), in front of which a separate fresh pullgate-enforce (same config, ` +
            `Redis flushed) pulled the same ${rt.pulls} images once each, by digest, one at a time ` +
            `(the same ${rt.pulls} GETs straight to that registry made ${rt.directTotal.toFixed(2)} request per pull):`,
          "",
          "| request pullgate-enforce → registry | status | what | per cold pull |",
          "|---|---:|---|---:|",
          ...rt.enforce.map(
            (k) => `| \`${k.request}\` | ${k.status} | ${k.what} | ${k.perPull.toFixed(2)} |`,
          ),
          `| total | | | ${rt.enforceTotal.toFixed(2)} |`,
          "",
          "What these are (src/pull/enforcer.ts, src/pull/signature-lookup.ts): the manifest itself (pullgate " +
            "hashes and serves exactly these bytes); then both signature formats at once — cosign's legacy tag " +
            "`sha256-<hex>.sig` followed by each simplesigning payload blob it lists (one here), and in parallel the " +
            "OCI 1.1 referrers API, which distribution 2.8 does not have (404), followed by the referrers tag schema " +
            "`sha256-<hex>` (404: no Sigstore bundle attached). So a cold pull costs 1 + 4 upstream requests, 3 of " +
            "them one after the other (manifest → `.sig` → payload; referrers → tag schema runs alongside), plus " +
            "two Redis round trips (the lookup that misses, then the verdict's write); a warm pull costs the manifest GET alone.",
        );
      }
      return lines;
    },
  };
}

/** The scenarios, in run order. Each is run against its targets. */
export function scenarios(): Scenario[] {
  return [
    manifestGet(8),
    manifestGet(1),
    manifestHead(8),
    blobGet(),
    manifestGetByDigest(8),
    manifestGetByDigest(1),
    coldManifestGet(200, 20),
  ];
}
