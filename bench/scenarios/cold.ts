import { stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { sequentialPulls } from "../client.ts";
import type { SmallImage } from "../images.ts";
import { parseAccessLog, perPull, type RoundTrips, readSince } from "../round-trips.ts";
import {
  DIRECT,
  decisionCounts,
  type Env,
  expect,
  type Measurement,
  medianOf,
  PULLGATE_ENFORCE,
  percentile,
  type RunRecord,
  type Scenario,
  type Target,
} from "../scenario.ts";
import type { PullgateServer, Server } from "../servers.ts";

export const DIRECT_LOOKUP = "direct+lookup";
/** Upstream requests a first pull needs at least (see the note). */
export const MIN_ROUND_TRIPS = 6;

/** What every cold-pull scenario reports first (measureColdPulls' keys). */
export const COLD_PULL_METRICS = [
  { key: "p50Ms", label: "pull p50 ms", decimals: 2 },
  { key: "p90Ms", label: "pull p90 ms", decimals: 2 },
  { key: "p99Ms", label: "pull p99 ms", decimals: 2 },
  { key: "maxMs", label: "pull max ms", decimals: 2 },
  { key: "upstreamPerPull", label: "upstream requests/pull (/metrics)", decimals: 2 },
] as const;

/** Pulls each image once, one at a time (HEAD by tag, GET by digest), with their latency percentiles. */
export async function measureColdPulls(target: Target, images: SmallImage[]): Promise<Measurement> {
  const r = await sequentialPulls({ baseUrl: target.baseUrl, images, lookup: target.name === DIRECT_LOOKUP });
  return {
    values: {
      p50Ms: percentile(r.latenciesMs, 50),
      p90Ms: percentile(r.latenciesMs, 90),
      p99Ms: percentile(r.latenciesMs, 99),
      maxMs: Math.max(...r.latenciesMs),
    },
    units: images.length,
    durationS: r.durationS,
    clientCpuS: r.cpuS,
    raw: { requests: r.requests, latenciesMs: r.latenciesMs.map((v) => Math.round(v * 1000) / 1000) },
  };
}

/**
 * Checks a pullgate run of `n` cold pulls: every pull allowed, one signature lookup each (upstream
 * requests per pull recorded), and `n` verdicts in Redis.
 */
export async function checkColdPulls(target: Target, record: RunRecord, env: Env, n: number): Promise<void> {
  const d = decisionCounts(record);
  expect(
    d.allow === n && d.deny === 0 && d.other === 0,
    target,
    `decisions ${JSON.stringify(record.decisions)}`,
  );
  if (env.metricsOn && record.metrics) {
    expect(record.metrics.lookups === n, target, `${record.metrics.lookups} lookups for ${n} cold pulls`);
    record.values.upstreamPerPull = record.metrics.upstreamRequests / n;
  } else {
    expect(
      d.verified === n,
      target,
      `expected ${n} fresh verifications, got ${JSON.stringify(record.decisions)}`,
    );
  }
  const stored = await env.redisVerdicts();
  expect(stored === n, target, `Redis holds ${stored} verdicts after ${n} cold pulls`);
}

function fmt(v: number | undefined): string {
  return v === undefined ? "–" : v.toFixed(2);
}

/**
 * Pulls the cold images (HEAD by tag + GET by digest, one at a time) through a separate fresh pullgate-enforce
 * whose upstream is a second docker-registry on the same storage with its access log on, and straight against
 * that registry; counts the requests each pull made upstream.
 */
async function countRoundTrips(env: Env): Promise<RoundTrips> {
  const images = env.sets.cold;
  let counting: Server | undefined;
  let proxy: PullgateServer | undefined;
  try {
    counting = await env.startRegistry("docker-registry-count", {
      storageDir: join(env.tmp, "registry", "storage"),
      accessLog: true,
    });
    await env.redis.flushall();
    proxy = await env.startPullgate("pullgate-enforce-count", counting.url, { enforce: true });
    const offset = (await stat(counting.logFile)).size;
    await sequentialPulls({ baseUrl: proxy.url, images, preconnect: false });
    await sleep(300); // the registry logs a request after answering it
    const through = parseAccessLog(await readSince(counting.logFile, offset));
    const directOffset = (await stat(counting.logFile)).size;
    await sequentialPulls({ baseUrl: counting.url, images, preconnect: false });
    await sleep(300);
    const direct = parseAccessLog(await readSince(counting.logFile, directOffset));
    const rt: RoundTrips = {
      pulls: images.length,
      enforce: perPull(through, images.length),
      enforceTotal: through.length / images.length,
      directTotal: direct.length / images.length,
    };
    env.log(
      `round trips per cold pull: ${rt.enforceTotal.toFixed(2)} through pullgate-enforce ` +
        `(${rt.enforce.map((k) => `${k.request} ${k.status}: ${k.perPull.toFixed(2)}`).join("; ")}), ` +
        `${rt.directTotal.toFixed(2)} direct`,
    );
    return rt;
  } finally {
    if (proxy) await env.stop(proxy);
    if (counting) await env.stop(counting);
  }
}

export function coldPull(): Scenario {
  let roundTrips: RoundTrips | undefined;
  return {
    id: "cold-pull",
    section: "2. Cold pull",
    title: "Cold pull (first pull by tag, verdict not cached), 1 connection",
    about:
      "The first pull of a signed image: HEAD by tag, then GET by digest, with neither pullgate-enforce's memory " +
      "nor Redis holding its verdict, so pullgate-enforce looks its signatures up and verifies them (the HEAD " +
      "starts that in the background; the GET waits for it). 200 different images per run, each pulled once. " +
      `\`${DIRECT_LOOKUP}\` is the floor: a client that pulls straight from the registry and makes the minimum ` +
      "signature-lookup requests itself, as pullgate must (see the round trips below), without checking anything. " +
      "pullgate-enforce runs fail unless every pull was a fresh verification (lookups = pulls) and Redis holds " +
      "the 200 verdicts afterwards.",
    method:
      "Node client (undici, one keep-alive connection; a second one for the referrers half of direct+lookup), " +
      "200 pulls one after the other, latency from the HEAD to the GET's last byte. Before each pullgate-enforce " +
      "run (untimed): a new process, FLUSHALL, 20 other signed images pulled through it (warms its JIT and " +
      "upstream connections), FLUSHALL again",
    runLength: () => "200 pulls per run",
    targets: (env): Target[] => [
      env.targets[DIRECT],
      { ...env.targets[DIRECT], name: DIRECT_LOOKUP },
      env.targets[PULLGATE_ENFORCE],
    ],
    metrics: [...COLD_PULL_METRICS],
    cpu: "pull",
    setup: async (env) => {
      roundTrips = await countRoundTrips(env);
      env.facts["cold-pull"] = { roundTrips, images: env.sets.cold.map((i) => i.digest) };
      await env.restartEnforce();
    },
    verify: async (target, env) => {
      // Every image once through the target: checks them all, and warms the registry's own caches for every
      // file a pull reads, so that the first run does not pay for them.
      await sequentialPulls({
        baseUrl: target.baseUrl,
        images: [...env.sets.primers, ...env.sets.cold],
        lookup: target.name === DIRECT_LOOKUP,
      });
    },
    beforeRun: async (target, env) => {
      if (target.name === PULLGATE_ENFORCE) await env.restartEnforce();
      await sequentialPulls({
        baseUrl: target.baseUrl,
        images: env.sets.primers,
        lookup: target.name === DIRECT_LOOKUP,
      });
      if (target.name === PULLGATE_ENFORCE) {
        await env.redis.flushall();
        expect((await env.redisVerdicts()) === 0, target, "Redis not empty after FLUSHALL");
      }
    },
    measure: (target, _durationS, env) => measureColdPulls(target, env.sets.cold),
    checkRun: async (target, record, env) => {
      if (target.name !== PULLGATE_ENFORCE) return;
      await checkColdPulls(target, record, env, env.sets.cold.length);
    },
    notes: (records) => {
      const med = (t: string, k: string) => medianOf(records, t, k);
      const added = (k: string, base: string) => {
        const a = med(PULLGATE_ENFORCE, k);
        const b = med(base, k);
        return a === undefined || b === undefined ? undefined : a - b;
      };
      const lines = [
        `Added latency of a cold pull through pullgate-enforce (median of its runs minus the median of the other's): ` +
          `over ${DIRECT}: p50 +${fmt(added("p50Ms", DIRECT))} ms, p99 +${fmt(added("p99Ms", DIRECT))} ms; ` +
          `over ${DIRECT_LOOKUP}: p50 ${signed(added("p50Ms", DIRECT_LOOKUP))} ms, p99 ${signed(added("p99Ms", DIRECT_LOOKUP))} ms.`,
      ];
      const rt = roundTrips;
      if (rt) {
        lines.push(
          "",
          `Upstream requests per cold pull, counted from the access log of a second docker-registry on the same ` +
            `storage (log on only there), in front of which a separate fresh pullgate-enforce (same config, Redis ` +
            `flushed) pulled the same ${rt.pulls} images once each, HEAD by tag + GET by digest, one at a time ` +
            `(the same pulls straight to that registry made ${rt.directTotal.toFixed(2)} requests per pull):`,
          "",
          "| request pullgate-enforce → registry | status | what | per cold pull |",
          "|---|---:|---|---:|",
          ...rt.enforce.map(
            (k) => `| \`${k.request}\` | ${k.status} | ${k.what} | ${k.perPull.toFixed(2)} |`,
          ),
          `| total | | | ${rt.enforceTotal.toFixed(2)} |`,
          "",
          `The minimum is ${MIN_ROUND_TRIPS}: the client's two requests (the HEAD by tag, and the manifest by digest, ` +
            "which pullgate must read to verify and serve), cosign's `.sig` manifest and its payload blob, and — " +
            "because a policy accepts either signature format — the referrers API and, as distribution 2.8 has " +
            "none, the referrers tag schema. The HEAD answers at once and starts the lookup in the background, " +
            "so the GET by digest that follows joins it; once the background fetch has the manifest, the manifest " +
            "cache should keep the GET from fetching it a second time. On the critical path: HEAD → manifest → " +
            "`.sig` → payload (the referrers pair runs alongside), plus the Redis read that misses and the " +
            "verdict's write.",
        );
      }
      return lines;
    },
  };
}

function signed(v: number | undefined): string {
  if (v === undefined) return "–";
  return `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`;
}
