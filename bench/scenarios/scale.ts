import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../../src/local/index.ts";
import { pushSignedImages, type SmallImage } from "../images.ts";
import { heapAfterGc } from "../inspector.ts";
import { expectClean, type LoadRun, runAutocannon } from "../load.ts";
import { deltaOf, METRIC, type MetricsDelta, type Scrape, sumOf } from "../metrics.ts";
import { memoryOf } from "../proc.ts";
import {
  CONTAINERD_ACCEPT,
  DIRECT,
  decisionCounts,
  type Env,
  expect,
  intEnv,
  type Scenario,
  type Target,
} from "../scenario.ts";
import type { PullgateServer, Server } from "../servers.ts";

const SCALE_REGISTRY = "docker-registry-scale";
const SCALE_A = "pullgate-enforce-scale";
const SCALE_B = "pullgate-enforce-scale-2";
export const MEMORY_TIER = "pullgate-enforce (memory)";
export const REDIS_TIER = "pullgate-enforce-2 (Redis)";
const REPO = "proj/scale";
const PRIMERS = 200;
/** Digests per run pulled one at a time (latency); the rest go through 8 connections (throughput). */
const LATENCY_SAMPLE = 2000;

async function redisUsedMemory(env: Env): Promise<number> {
  const info = await env.redis.info("memory");
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
}

/** One memory reading of the scale pullgate process and Redis. */
type MemoryReading = {
  /** VmRSS right after the load settled (1 s), as process_resident_memory_bytes would say. */
  rss: number;
  /** V8 heap in use after two full garbage collections (inspector), and the RSS then. */
  heapUsed: number;
  rssAfterGc: number;
  /** Redis INFO memory used_memory. */
  redis: number;
  /** /metrics gauges, when on. */
  verdictEntries?: number;
  manifestEntries?: number;
  manifestBytes?: number;
};

export type ScaleFacts = {
  images: number;
  pushS: number;
  coldPullsPerS: number;
  coldP50Ms: number;
  coldP99Ms: number;
  before: MemoryReading;
  after: MemoryReading;
  /** A's RSS after the measured runs (hits only since "after", no new verdicts). */
  rssAfterRuns?: number;
  redisVerdicts: number;
  coldMetrics?: MetricsDelta;
};

/**
 * 10,000 distinct signed digests, verdicts cached: memory per verdict, hit latency, and throughput with Redis as
 * the only shared tier (a second process with an empty memory).
 */
export function scaleScenario(): Scenario {
  const count = intEnv("BENCH_SCALE_IMAGES", 10_000);
  let registry: Server | undefined;
  let a: PullgateServer | undefined;
  let b: PullgateServer | undefined;
  let images: SmallImage[] = [];
  let primers: SmallImage[] = [];
  let facts: ScaleFacts | undefined;
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`scale: ${what} is not running`);
    return v;
  };
  const paths = (list: SmallImage[]) => list.map((i) => `/v2/${i.repository}/manifests/${i.digest}`);
  const slices = (run: number) => {
    const h = Math.min(LATENCY_SAMPLE, Math.floor(images.length / 4));
    const start = ((run - 1) * h) % images.length;
    const one = images.slice(start, start + h);
    const rest = [...images.slice(0, start), ...images.slice(start + h)];
    return { one, rest };
  };
  const pass = async (url: string, list: SmallImage[], connections: number, env: Env): Promise<LoadRun> => {
    const load = await runAutocannon(
      {
        url,
        connections,
        amount: list.length,
        headers: { accept: CONTAINERD_ACCEPT },
        paths: paths(list),
      },
      env.scratch,
    );
    expectClean(load, `scale pass on ${url}`);
    if (load.requests !== list.length)
      throw new Error(`scale pass on ${url}: ${load.requests} of ${list.length} answers`);
    return load;
  };
  return {
    id: "scale",
    section: "5. Scale",
    title: `Scale: ${count.toLocaleString("en-US")} signed digests, verdicts cached`,
    about:
      `${count.toLocaleString("en-US")} distinct signed images (tiny: a shared config and layer, a manifest made ` +
      "unique by an annotation, a cosign legacy signature each) in a docker-registry of their own (in-memory " +
      "storage: pushing them takes tens of seconds and leaves nothing on disk). Once, before the runs: a fresh " +
      `pullgate-enforce (\`${MEMORY_TIER}\`) pulls each once by digest (cold: ${count.toLocaleString("en-US")} ` +
      "verifications, 8 connections), and the memory its process and Redis hold afterwards is measured (below). " +
      `Then per run: \`${MEMORY_TIER}\` re-pulls them (memory-tier hits); \`${REDIS_TIER}\` is a second process ` +
      "started fresh for each run (empty memory, same Redis) pulling the same digests, so each of its reads is a " +
      "Redis hit, never a lookup (its runs fail on any lookup, or when pullgate_verdict_cache_hits_total{tier=" +
      '"redis"} did not grow by the number of pulls); `direct` is the same GETs against that registry.',
    method:
      `autocannon over the digest list, each digest once per run: ${LATENCY_SAMPLE} of them one at a time (1 ` +
      "connection: hit latency), the others over 8 connections (throughput); GET by digest with containerd's Accept list",
    runLength: () => `${count.toLocaleString("en-US")} GETs per run`,
    targets: (): Target[] => [
      {
        name: DIRECT,
        get baseUrl() {
          return need(registry, "its registry").url;
        },
        roles: { registry: SCALE_REGISTRY },
      },
      {
        name: MEMORY_TIER,
        get baseUrl() {
          return need(a, SCALE_A).url;
        },
        roles: { proxy: SCALE_A, registry: SCALE_REGISTRY, redis: "redis" },
        pullgate: () => need(a, SCALE_A),
      },
      {
        name: REDIS_TIER,
        get baseUrl() {
          return need(b, SCALE_B).url;
        },
        roles: { proxy: SCALE_B, registry: SCALE_REGISTRY, redis: "redis" },
        pullgate: () => need(b, SCALE_B),
      },
    ],
    metrics: [
      { key: "p50Ms", label: "p50 ms, 1 connection", decimals: 2 },
      { key: "p99Ms", label: "p99 ms, 1 connection", decimals: 2 },
      { key: "reqPerS", label: "req/s, 8 connections", decimals: 0 },
      { key: "p99c8Ms", label: "p99 ms, 8 connections", decimals: 2 },
    ],
    cpu: "request",
    setup: async (env) => {
      registry = await env.startRegistry(SCALE_REGISTRY, { inMemory: true });
      const t0 = performance.now();
      const pushed = await pushSignedImages({
        registryUrl: registry.url,
        repository: REPO,
        label: "scale",
        count: count + PRIMERS,
        key: env.key,
      });
      const pushS = (performance.now() - t0) / 1000;
      primers = pushed.slice(0, PRIMERS);
      images = pushed.slice(PRIMERS);
      env.log(`scale: pushed ${count + PRIMERS} signed images in ${pushS.toFixed(1)} s`);

      await env.redis.flushall();
      const inspectPort = await freePort();
      a = await env.startPullgate(SCALE_A, registry.url, {
        enforce: true,
        nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`],
      });
      const server = a;
      await pass(server.url, primers, 8, env);
      const read = async (): Promise<{ reading: MemoryReading; scrape: Scrape | undefined }> => {
        await sleep(1000);
        const rss = (await memoryOf(server.proc.pid)).rss;
        const m = await env.scrape(server);
        const heap = await heapAfterGc(inspectPort);
        const reading: MemoryReading = {
          rss,
          heapUsed: heap.usedBytes,
          rssAfterGc: (await memoryOf(server.proc.pid)).rss,
          redis: await redisUsedMemory(env),
        };
        if (m) {
          reading.verdictEntries = sumOf(m, METRIC.verdictEntries);
          reading.manifestEntries = sumOf(m, "pullgate_manifest_cache_entries");
          reading.manifestBytes = sumOf(m, METRIC.manifestBytes);
        }
        return { reading, scrape: m };
      };
      const before = await read();
      const cold = await pass(server.url, images, 8, env);
      const after = await read();
      const redisVerdicts = await env.redisVerdicts();
      const coldMetrics = before.scrape && after.scrape ? deltaOf(before.scrape, after.scrape) : undefined;
      if (coldMetrics && coldMetrics.lookups !== count)
        throw new Error(`scale: ${coldMetrics.lookups} signature lookups for ${count} cold pulls`);
      if (redisVerdicts < count)
        throw new Error(`scale: Redis holds ${redisVerdicts} verdicts after ${count} cold pulls`);
      facts = {
        images: count,
        pushS,
        coldPullsPerS: cold.requests / cold.durationS,
        coldP50Ms: cold.latency?.p50 ?? Number.NaN,
        coldP99Ms: cold.latency?.p99 ?? Number.NaN,
        before: before.reading,
        after: after.reading,
        redisVerdicts,
        ...(coldMetrics ? { coldMetrics } : {}),
      };
      env.facts.scale = facts as unknown as Record<string, unknown>;
      const per = (k: "rss" | "heapUsed" | "redis") =>
        ((after.reading[k] - before.reading[k]) / count).toFixed(0);
      env.log(
        `scale: ${count} cold pulls at ${facts.coldPullsPerS.toFixed(0)}/s; per digest: V8 heap +${per("heapUsed")} B, ` +
          `RSS +${per("rss")} B, Redis +${per("redis")} B (${redisVerdicts} verdict keys)`,
      );
    },
    beforeRun: async (target, env) => {
      if (target.name !== REDIS_TIER) return;
      if (b) await env.stop(b);
      b = await env.startPullgate(SCALE_B, need(registry, "its registry").url, { enforce: true });
      // Warms the new process up (JIT, upstream connections) on other digests whose verdicts Redis holds too.
      await pass(b.url, primers, 8, env);
    },
    measure: async (target, _durationS, env, run) => {
      const { one, rest } = slices(run);
      const c1 = await pass(target.baseUrl, one, 1, env);
      const c8 = await pass(target.baseUrl, rest, 8, env);
      return {
        values: {
          p50Ms: c1.latency?.p50 ?? Number.NaN,
          p99Ms: c1.latency?.p99 ?? Number.NaN,
          reqPerS: c8.requests / c8.durationS,
          p99c8Ms: c8.latency?.p99 ?? Number.NaN,
        },
        units: c1.requests + c8.requests,
        durationS: c1.durationS + c8.durationS,
        clientCpuS: (c1.clientCpuTicks + c8.clientCpuTicks) / env.ticks,
        raw: { c1: { ...c1, byMethod: undefined }, c8: { ...c8, byMethod: undefined } },
      };
    },
    checkRun: async (target, record, env) => {
      if (target.name === DIRECT) return;
      const d = decisionCounts(record);
      expect(
        d.deny === 0 && d.other === 0 && d.verified === 0,
        target,
        `decisions ${JSON.stringify(record.decisions)}`,
      );
      if (env.metricsOn && record.metrics) {
        expect(record.metrics.lookups === 0, target, `${record.metrics.lookups} signature lookups`);
        if (target.name === REDIS_TIER) {
          expect(
            record.metrics.verdictHitsRedis >= record.units,
            target,
            `pullgate_verdict_cache_hits_total{tier="redis"} grew by ${record.metrics.verdictHitsRedis} for ${record.units} pulls`,
          );
        }
      } else if (target.name === REDIS_TIER) {
        const redisHits = record.decisions?.["allow/redis"] ?? 0;
        expect(
          redisHits === record.units,
          target,
          `${redisHits} Redis-tier allows for ${record.units} pulls`,
        );
      }
    },
    notes: () => {
      const f = facts;
      if (!f) return [];
      const mb = (v: number) => (v / 1e6).toFixed(1);
      const row = (what: string, b: number, a: number) =>
        `| ${what} | ${mb(b)} MB | ${mb(a)} MB | ${((a - b) / f.images).toFixed(0)} bytes |`;
      const lines = [
        `Setup: ${f.images.toLocaleString("en-US")} images (+${PRIMERS} primers) pushed in ${f.pushS.toFixed(0)} s; ` +
          `their first pulls through \`${MEMORY_TIER}\` (cold, 8 connections): ${f.coldPullsPerS.toFixed(0)} pulls/s, ` +
          `p50 ${f.coldP50Ms.toFixed(1)} ms, p99 ${f.coldP99Ms.toFixed(1)} ms` +
          (f.coldMetrics ? `, ${f.coldMetrics.lookups} signature lookups (/metrics).` : "."),
        "",
        `Memory for ${f.images.toLocaleString("en-US")} cached digests (one measurement, before and after their cold pulls):`,
        "",
        "| what | before | after | per digest |",
        "|---|---:|---:|---:|",
        row("pullgate: V8 heap in use after a full GC (inspector)", f.before.heapUsed, f.after.heapUsed),
        row(
          "pullgate: RSS (/proc VmRSS = process_resident_memory_bytes), 1 s after the load",
          f.before.rss,
          f.after.rss,
        ),
        row("pullgate: RSS after that full GC", f.before.rssAfterGc, f.after.rssAfterGc),
        row("Redis: used_memory (INFO memory)", f.before.redis, f.after.redis),
      ];
      const entries =
        f.after.verdictEntries !== undefined
          ? ` pullgate_verdict_cache_entries went ${f.before.verdictEntries} → ${f.after.verdictEntries}; ` +
            `pullgate_manifest_cache_entries ${f.before.manifestEntries} → ${f.after.manifestEntries}, holding ` +
            `${mb(f.after.manifestBytes ?? 0)} MB of manifest bytes (pullgate_manifest_cache_bytes).`
          : "";
      lines.push(
        "",
        "Per digest, the process holds a verdict (in-process tier) and, since the manifest cache, the manifest " +
          "itself, so its figures are for both. The heap figure is exact for the JavaScript objects (the pullgate " +
          "process is started with --inspect for this; two full collections before reading); manifest bytes live " +
          "in Buffers outside the V8 heap, so they show in the RSS, not in the heap. The RSS figures also hold heap " +
          "space V8 grew for the load and garbage not collected yet (1 s after the load), hence the reading after " +
          `a GC${f.rssAfterRuns === undefined ? "" : ` (after the measured runs, cache hits only since, it was ${mb(f.rssAfterRuns)} MB)`}.` +
          `${entries} Redis holds ${f.redisVerdicts} verdict keys (the ${PRIMERS} primers' included); its ` +
          "per-digest figure is the keys, values, TTLs and dictionary overhead.",
      );
      return lines;
    },
    teardown: async (env) => {
      if (a && facts) facts.rssAfterRuns = (await memoryOf(a.proc.pid)).rss;
      for (const s of [b, a, registry]) if (s) await env.stop(s);
      a = undefined;
      b = undefined;
      registry = undefined;
    },
  };
}
