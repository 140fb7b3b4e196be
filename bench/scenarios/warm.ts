import { expectClean, runAutocannon } from "../load.ts";
import {
  CONTAINERD_ACCEPT,
  DIRECT,
  decisionCounts,
  type Env,
  expect,
  medianOf,
  NGINX,
  PULLGATE,
  PULLGATE_ENFORCE,
  REGISTRY_PROXY,
  type RunRecord,
  type Scenario,
  type Target,
  verifyManifest,
} from "../scenario.ts";
import { REPOSITORY, TAG } from "../servers.ts";

export const WARM_TARGETS = [DIRECT, PULLGATE_ENFORCE, PULLGATE, NGINX, REGISTRY_PROXY] as const;

const HEAD_PATH = `/v2/${REPOSITORY}/manifests/${TAG}`;
const digestPath = (env: Env) => `/v2/${REPOSITORY}/manifests/${env.image.manifestDigest}`;

function warmTargets(env: Env): Target[] {
  return WARM_TARGETS.map((name) => env.targets[name]);
}

/** On pullgate-enforce, a warm run must not look anything up: every decision is a cached allow. */
async function expectWarm(target: Target, record: RunRecord, env: Env): Promise<void> {
  if (target.name !== PULLGATE_ENFORCE) return;
  const d = decisionCounts(record);
  expect(
    d.deny === 0 && d.other === 0 && d.verified === 0,
    target,
    `a warm run made decisions other than cached allows: ${JSON.stringify(record.decisions)}`,
  );
  if (env.metricsOn && record.metrics) {
    expect(record.metrics.lookups === 0, target, `${record.metrics.lookups} signature lookups in a warm run`);
  }
}

/** Upstream requests per unit of work, from /metrics (pullgate targets, metrics on). */
function upstreamPer(record: RunRecord): number | undefined {
  return record.metrics && record.units > 0 ? record.metrics.upstreamRequests / record.units : undefined;
}

function upstreamNote(records: RunRecord[], unit: string): string[] {
  const lines: string[] = [];
  for (const name of [PULLGATE_ENFORCE, PULLGATE]) {
    const v = medianOf(records, name, "upstreamPerUnit");
    const hits = medianOf(records, name, "manifestHitsPerUnit");
    if (v !== undefined)
      lines.push(
        `${name}: ${v.toFixed(2)} upstream requests per ${unit}` +
          (hits === undefined
            ? ""
            : `, ${hits.toFixed(2)} manifests per ${unit} served from its manifest cache`) +
          " (pullgate_upstream_requests_total, pullgate_manifest_cache_hits_total).",
      );
  }
  return lines;
}

export function warmPull(connections: number): Scenario {
  return {
    id: `warm-pull-c${connections}`,
    section: "1. Warm pull",
    title: `Warm pull, ${connections} connection${connections === 1 ? "" : "s"}`,
    about:
      "containerd's pull of a manifest: HEAD by tag, then GET by the digest, with containerd's Accept list, for " +
      "a signed image whose verdict pullgate-enforce holds in memory. A pull is the HEAD and the GET; pulls/s " +
      "counts pairs, latency is the HEAD's plus the GET's (back to back on one connection). pullgate-enforce runs " +
      "fail on any signature lookup or any decision that is not a cached allow.",
    method:
      `autocannon ${connections} connection${connections === 1 ? "" : "s"}, each repeating HEAD ${HEAD_PATH} + ` +
      `GET /v2/${REPOSITORY}/manifests/<digest>`,
    runLength: (s) => `${s} s runs`,
    targets: warmTargets,
    metrics: [
      { key: "pullsPerS", label: "pulls/s", decimals: 0 },
      { key: "p50Ms", label: "pull p50 ms", decimals: 2 },
      { key: "p99Ms", label: "pull p99 ms", decimals: 2 },
      { key: "reqP50Ms", label: "request p50 ms", decimals: 2 },
      { key: "reqP99Ms", label: "request p99 ms", decimals: 2 },
    ],
    cpu: "pull",
    durationS: (base) => (connections === 1 ? Math.min(base, 5) : base),
    warmupS: 2,
    verify: async (target, env) => {
      await verifyManifest(target, env, "HEAD", HEAD_PATH);
      await verifyManifest(target, env, "GET", digestPath(env));
    },
    measure: async (target, durationS, env) => {
      const load = await runAutocannon(
        {
          url: target.baseUrl,
          connections,
          durationS,
          headers: { accept: CONTAINERD_ACCEPT },
          sequence: [
            { method: "HEAD", path: HEAD_PATH },
            { method: "GET", path: digestPath(env) },
          ],
        },
        env.scratch,
      );
      expectClean(load, `${target.name} warm pull`);
      return {
        values: {
          pullsPerS: load.sequences / load.durationS,
          p50Ms: load.sequence?.p50 ?? Number.NaN,
          p99Ms: load.sequence?.p99 ?? Number.NaN,
          reqP50Ms: load.latency?.p50 ?? Number.NaN,
          reqP99Ms: load.latency?.p99 ?? Number.NaN,
        },
        units: load.sequences,
        durationS: load.durationS,
        clientCpuS: load.clientCpuTicks / env.ticks,
        raw: load,
      };
    },
    checkRun: checkWarmRun,
    notes: (records) => upstreamNote(records, "pull"),
  };
}

/** Both warm scenarios: every decision a cached allow, plus upstream requests and manifest hits per unit. */
async function checkWarmRun(target: Target, record: RunRecord, env: Env): Promise<void> {
  await expectWarm(target, record, env);
  const up = upstreamPer(record);
  if (up !== undefined) record.values.upstreamPerUnit = up;
  if (record.metrics && record.units > 0)
    record.values.manifestHitsPerUnit = record.metrics.manifestHits / record.units;
}

/** The GET containerd sends after resolving a tag, alone. */
export function warmGetByDigest(connections: number): Scenario {
  return {
    id: `warm-get-digest-c${connections}`,
    section: "1. Warm pull",
    title: `Warm GET by digest alone, ${connections} connections`,
    about:
      "The second half of a pull alone: GET /v2/proj/app/manifests/<digest> with containerd's Accept list " +
      "(the request the manifest cache serves without the upstream).",
    method: `autocannon ${connections} connections, GET /v2/${REPOSITORY}/manifests/<digest> in a loop`,
    runLength: (s) => `${s} s runs`,
    targets: warmTargets,
    metrics: [
      { key: "reqPerS", label: "req/s", decimals: 0 },
      { key: "p50Ms", label: "p50 ms", decimals: 2 },
      { key: "p99Ms", label: "p99 ms", decimals: 2 },
    ],
    cpu: "request",
    durationS: (base) => Math.min(base, 5),
    warmupS: 1,
    verify: (target, env) => verifyManifest(target, env, "GET", digestPath(env)),
    measure: async (target, durationS, env) => {
      const load = await runAutocannon(
        {
          url: target.baseUrl,
          connections,
          durationS,
          headers: { accept: CONTAINERD_ACCEPT },
          sequence: [{ method: "GET", path: digestPath(env) }],
        },
        env.scratch,
      );
      expectClean(load, `${target.name} GET by digest`);
      return {
        values: {
          reqPerS: load.requests / load.durationS,
          p50Ms: load.latency?.p50 ?? Number.NaN,
          p99Ms: load.latency?.p99 ?? Number.NaN,
        },
        units: load.requests,
        durationS: load.durationS,
        clientCpuS: load.clientCpuTicks / env.ticks,
        raw: load,
      };
    },
    checkRun: checkWarmRun,
    notes: (records) => upstreamNote(records, "request"),
  };
}
