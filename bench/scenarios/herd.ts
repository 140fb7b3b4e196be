import { stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { herd } from "../client.ts";
import type { SmallImage } from "../images.ts";
import { parseAccessLog, readSince } from "../round-trips.ts";
import {
  DIRECT,
  type Env,
  expect,
  medianOf,
  PULLGATE_ENFORCE,
  percentile,
  type Scenario,
  type Target,
} from "../scenario.ts";
import type { PullgateServer, Server } from "../servers.ts";

export const HERD_SIZE = 500;
const HERD_PULLGATE = "pullgate-enforce-herd";
const COUNT_REGISTRY = "docker-registry-count";

/**
 * 500 first pulls of one digest at once. Both targets go through a docker-registry with its access log on
 * (same storage as the main one), so that the `.sig` reads can be counted; pullgate-enforce is a fresh process
 * for every run (empty memory), with Redis flushed, and never saw the digest.
 */
export function herdScenario(): Scenario {
  let counting: Server | undefined;
  let proxy: PullgateServer | undefined;
  const image = (env: Env, run: number): SmallImage => {
    const i = env.sets.herd[run];
    if (!i) throw new Error(`no herd image for run ${run}`);
    return i;
  };
  const path = (i: SmallImage) => `/v2/${i.repository}/manifests/${i.digest}`;
  const sigPath = (i: SmallImage) =>
    `/v2/${i.repository}/manifests/sha256-${i.digest.slice("sha256:".length)}.sig`;
  return {
    id: "herd",
    section: "3. Herd",
    title: `Herd: ${HERD_SIZE} concurrent first pulls of one digest`,
    about:
      `${HERD_SIZE} GETs by digest of one signed image that pullgate-enforce has never verified, all sent at once, ` +
      "each on its own new connection (a fleet pulling a just-pushed image). pullgate-enforce is a fresh process " +
      "per run with Redis flushed; every run uses a digest of its own. pullgate should make ONE signature lookup " +
      "for all of them (counted from /metrics, pullgate_signature_lookups_total, and cross-checked with the `.sig` " +
      "manifest reads in the registry's access log). Here both targets reach a docker-registry with its access " +
      "log on (the same storage as the main one), so `direct` is that registry.",
    method: `Node client (undici Pool of ${HERD_SIZE} connections), ${HERD_SIZE} GETs dispatched at once, latency from dispatch to the last body byte (connection setup included)`,
    runLength: () => `${HERD_SIZE} GETs per run`,
    targets: (): Target[] => {
      const roles = { registry: COUNT_REGISTRY };
      const lazy = (): Server => {
        if (!counting) throw new Error("the herd's registry is not running");
        return counting;
      };
      const countingTarget: Target = {
        name: DIRECT,
        get baseUrl() {
          return lazy().url;
        },
        roles,
      };
      const enforceTarget: Target = {
        name: PULLGATE_ENFORCE,
        get baseUrl() {
          if (!proxy) throw new Error("the herd's pullgate is not running");
          return proxy.url;
        },
        roles: { proxy: HERD_PULLGATE, registry: COUNT_REGISTRY, redis: "redis" },
        pullgate: () => {
          if (!proxy) throw new Error("the herd's pullgate is not running");
          return proxy;
        },
      };
      return [countingTarget, enforceTarget];
    },
    metrics: [
      { key: "p50Ms", label: "p50 ms", decimals: 1 },
      { key: "p99Ms", label: "p99 ms", decimals: 1 },
      { key: "maxMs", label: "max ms", decimals: 1 },
      { key: "ok", label: "200 answers", decimals: 0 },
      { key: "failed", label: "errors, timeouts, non-200", decimals: 0 },
      { key: "lookups", label: "signature lookups (/metrics)", decimals: 0 },
      { key: "sigReads", label: "`.sig` reads upstream (access log)", decimals: 0 },
      { key: "manifestReads", label: "manifest GETs upstream (access log)", decimals: 0 },
    ],
    setup: async (env) => {
      counting = await env.startRegistry(COUNT_REGISTRY, {
        storageDir: join(env.tmp, "registry", "storage"),
        accessLog: true,
      });
      proxy = await env.startPullgate(HERD_PULLGATE, counting.url, { enforce: true });
    },
    verify: async (target, env) => {
      // The spare image (index 0): every target answers it right.
      const i = image(env, 0);
      const r = await herd({ baseUrl: target.baseUrl, path: path(i), digest: i.digest, n: 4 });
      expect(r.statuses["200"] === 4 && r.wrongBytes === 0, target, `herd check: ${JSON.stringify(r)}`);
    },
    beforeRun: async (target, env) => {
      if (target.name !== PULLGATE_ENFORCE) return;
      if (proxy) await env.stop(proxy);
      proxy = undefined;
      await env.redis.flushall();
      if (!counting) throw new Error("the herd's registry is not running");
      proxy = await env.startPullgate(HERD_PULLGATE, counting.url, { enforce: true });
    },
    measure: async (target, _durationS, env, run) => {
      const i = image(env, run);
      if (!counting) throw new Error("the herd's registry is not running");
      const offset = (await stat(counting.logFile)).size;
      const r = await herd({ baseUrl: target.baseUrl, path: path(i), digest: i.digest, n: HERD_SIZE });
      await sleep(300); // the registry logs a request after answering it
      const seen = parseAccessLog(await readSince(counting.logFile, offset));
      const ok = (r.statuses["200"] ?? 0) - r.wrongBytes;
      const lat = r.latenciesMs.length > 0 ? r.latenciesMs : [Number.NaN];
      return {
        values: {
          p50Ms: percentile(lat, 50),
          p99Ms: percentile(lat, 99),
          maxMs: Math.max(...lat),
          ok,
          failed: HERD_SIZE - ok,
          sigReads: seen.filter((s) => s.method === "GET" && s.uri === sigPath(i)).length,
          manifestReads: seen.filter((s) => s.method === "GET" && s.uri === path(i)).length,
        },
        units: HERD_SIZE,
        durationS: r.wallMs / 1000,
        clientCpuS: r.cpuS,
        raw: {
          statuses: r.statuses,
          errors: r.errors,
          wrongBytes: r.wrongBytes,
          wallMs: r.wallMs,
          upstream: seen.length,
        },
      };
    },
    checkRun: async (target, record, env) => {
      if (target.name !== PULLGATE_ENFORCE) return;
      if (env.metricsOn && record.metrics) record.values.lookups = record.metrics.lookups;
    },
    notes: (records) => {
      const lookups = records.filter((r) => r.target === PULLGATE_ENFORCE).map((r) => r.values.lookups);
      const sig = records.filter((r) => r.target === PULLGATE_ENFORCE).map((r) => r.values.sigReads);
      const failed = records.map((r) => r.values.failed ?? 0).reduce((a, b) => a + b, 0);
      const errs = records
        .map((r) => (r.raw as { errors?: Record<string, number> } | undefined)?.errors ?? {})
        .filter((e) => Object.keys(e).length > 0);
      const p99 = medianOf(records, PULLGATE_ENFORCE, "p99Ms");
      return [
        `Signature lookups per herd, run by run: ${lookups.map((v) => (v === undefined ? "n/a (no /metrics)" : String(v))).join(", ")}; ` +
          `\`.sig\` reads in the access log: ${sig.join(", ")}. p99 through pullgate-enforce: ${p99?.toFixed(1) ?? "–"} ms.`,
        failed === 0
          ? `Every one of the ${records.length * HERD_SIZE} GETs answered 200 with the right bytes.`
          : `${failed} GETs failed (errors: ${JSON.stringify(errs)}).`,
      ];
    },
    teardown: async (env) => {
      if (proxy) await env.stop(proxy);
      if (counting) await env.stop(counting);
      proxy = undefined;
      counting = undefined;
    },
  };
}
