import { expectClean, type LoadRun, runAutocannon } from "../load.ts";
import {
  CONTAINERD_ACCEPT,
  DIRECT,
  decisionCounts,
  type Env,
  expect,
  medianOf,
  PULLGATE_ENFORCE,
  type Scenario,
  type Target,
} from "../scenario.ts";
import { REPOSITORY, TAG } from "../servers.ts";

const HAMMERED = " + hammer";
export const DENIAL_TARGETS = {
  direct: DIRECT,
  directHammered: `${DIRECT}${HAMMERED}`,
  enforce: PULLGATE_ENFORCE,
  enforceHammered: `${PULLGATE_ENFORCE}${HAMMERED}`,
} as const;

/**
 * A misbehaving node retrying an unsigned image in a loop (8 connections, GET by digest: 403 from
 * pullgate-enforce), and a well-behaved node pulling a signed image at the same time (1 connection, HEAD by tag
 * + GET by digest): the well-behaved node's latency with and without the hammering.
 */
export function denialsScenario(): Scenario {
  const hammer = (env: Env) => `/v2/${env.sets.unsigned.repository}/manifests/${env.sets.unsigned.digest}`;
  return {
    id: "denials",
    section: "6. Denials",
    title: "Denials: an unsigned image hammered in a loop, and a well-behaved client beside it",
    about:
      "The hammer: GET by digest of the unsigned proj/unsigned:v1 in a loop over 8 connections — 403 DENIED from " +
      "pullgate-enforce (the denial is cached, so after the first it is a cache hit), 200 from the registry " +
      "itself. The well-behaved client: warm pulls of the signed proj/app:v1 (HEAD by tag + GET by digest) over " +
      `1 connection. \`… ${HAMMERED.trim()}\` runs both at once; the other runs have the well-behaved client alone. ` +
      '"A misbehaving node retrying in a loop must not hurt everyone else": compare each target\'s pulls with ' +
      "and without the hammer (below the table).",
    method:
      "two autocannon processes at once: the hammer (8 connections, GET in a loop) and the well-behaved client (1 " +
      "connection, HEAD + GET in a loop)",
    runLength: (s) => `${s} s runs`,
    targets: (env): Target[] => [
      env.targets[DIRECT],
      { ...env.targets[DIRECT], name: DENIAL_TARGETS.directHammered },
      env.targets[PULLGATE_ENFORCE],
      { ...env.targets[PULLGATE_ENFORCE], name: DENIAL_TARGETS.enforceHammered },
    ],
    metrics: [
      { key: "pullsPerS", label: "well-behaved pulls/s", decimals: 0 },
      { key: "p50Ms", label: "well-behaved pull p50 ms", decimals: 2 },
      { key: "p99Ms", label: "well-behaved pull p99 ms", decimals: 2 },
      { key: "hammerPerS", label: "hammer answers/s (403 via pullgate)", decimals: 0 },
      { key: "hammerP50Ms", label: "hammer p50 ms", decimals: 2 },
    ],
    durationS: (base) => Math.min(base, 6),
    warmupS: 1,
    verify: async (target, env) => {
      const res = await fetch(`${target.baseUrl}${hammer(env)}`, { headers: { accept: CONTAINERD_ACCEPT } });
      await res.arrayBuffer();
      const want = target.name.startsWith(PULLGATE_ENFORCE) ? 403 : 200;
      expect(
        res.status === want,
        target,
        `GET of the unsigned image answered ${res.status}, expected ${want}`,
      );
    },
    measure: async (target, durationS, env) => {
      const hammered = target.name.endsWith(HAMMERED);
      const good = runAutocannon(
        {
          url: target.baseUrl,
          connections: 1,
          durationS,
          headers: { accept: CONTAINERD_ACCEPT },
          sequence: [
            { method: "HEAD", path: `/v2/${REPOSITORY}/manifests/${TAG}` },
            { method: "GET", path: `/v2/${REPOSITORY}/manifests/${env.image.manifestDigest}` },
          ],
        },
        env.scratch,
      );
      const bad: Promise<LoadRun | undefined> = hammered
        ? runAutocannon(
            {
              url: target.baseUrl,
              connections: 8,
              durationS,
              headers: { accept: CONTAINERD_ACCEPT },
              sequence: [{ method: "GET", path: hammer(env) }],
            },
            env.scratch,
          )
        : Promise.resolve(undefined);
      const [g, h] = await Promise.all([good, bad]);
      expectClean(g, `${target.name}: the well-behaved client`);
      if (h)
        expectClean(h, `${target.name}: the hammer`, [target.name.startsWith(PULLGATE_ENFORCE) ? 403 : 200]);
      const values: Record<string, number> = {
        pullsPerS: g.sequences / g.durationS,
        p50Ms: g.sequence?.p50 ?? Number.NaN,
        p99Ms: g.sequence?.p99 ?? Number.NaN,
      };
      if (h) {
        values.hammerPerS = h.requests / h.durationS;
        values.hammerP50Ms = h.latency?.p50 ?? Number.NaN;
      }
      return {
        values,
        units: g.sequences + (h?.requests ?? 0),
        durationS: g.durationS,
        clientCpuS: (g.clientCpuTicks + (h?.clientCpuTicks ?? 0)) / env.ticks,
        raw: { good: { ...g, byMethod: undefined }, hammer: h ? { ...h, byMethod: undefined } : undefined },
      };
    },
    checkRun: async (target, record, env) => {
      if (!target.name.startsWith(PULLGATE_ENFORCE)) return;
      // Denials are cached for denyTtlSeconds (60 s): at most one lookup per run, when the cached one expired.
      if (env.metricsOn && record.metrics) {
        expect(record.metrics.lookups <= 1, target, `${record.metrics.lookups} signature lookups in a run`);
      } else {
        // Without /metrics: the requests that joined that lookup (up to one per connection) log it as fresh too.
        const d = decisionCounts(record);
        expect(
          d.verified <= 9,
          target,
          `fresh verifications in a denial run: ${JSON.stringify(record.decisions)}`,
        );
      }
    },
    notes: (records) => {
      const m = (t: string, k: string) => medianOf(records, t, k);
      const line = (quiet: string, loud: string) => {
        const q50 = m(quiet, "p50Ms");
        const l50 = m(loud, "p50Ms");
        const q99 = m(quiet, "p99Ms");
        const l99 = m(loud, "p99Ms");
        const qr = m(quiet, "pullsPerS");
        const lr = m(loud, "pullsPerS");
        if ([q50, l50, q99, l99, qr, lr].some((v) => v === undefined)) return `${quiet}: –`;
        return (
          `${quiet}: with the hammer the well-behaved client's p50 goes ${q50?.toFixed(2)} → ${l50?.toFixed(2)} ms ` +
          `(×${((l50 as number) / (q50 as number)).toFixed(2)}), p99 ${q99?.toFixed(2)} → ${l99?.toFixed(2)} ms ` +
          `(×${((l99 as number) / (q99 as number)).toFixed(2)}), pulls/s ${qr?.toFixed(0)} → ${lr?.toFixed(0)}, while ` +
          `the hammer got ${m(loud, "hammerPerS")?.toFixed(0)} answers/s.`
        );
      };
      return [
        `- ${line(DENIAL_TARGETS.direct, DENIAL_TARGETS.directHammered)}`,
        `- ${line(DENIAL_TARGETS.enforce, DENIAL_TARGETS.enforceHammered)}`,
        "",
        "The two cores are shared by the servers and both load generators, so some slowdown under any extra load " +
          "is expected; the comparison that matters is pullgate's slowdown against the registry's own for the same " +
          "hammering (there 200s, here 403s).",
      ];
    },
  };
}
