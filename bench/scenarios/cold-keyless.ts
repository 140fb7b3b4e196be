import { sequentialPulls } from "../client.ts";
import type { SmallImage } from "../images.ts";
import { KEYLESS_PROJECT, pushKeylessImages } from "../keyless-images.ts";
import { POOL_THREADS, type SharedKeylessSigner, startKeylessPullgate } from "../keyless-pullgate.ts";
import { sumOf } from "../metrics.ts";
import { DIRECT, type Env, expect, medianOf, type Scenario, type Target } from "../scenario.ts";
import type { PullgateServer } from "../servers.ts";
import { COLD_PULL_METRICS, checkColdPulls, DIRECT_LOOKUP, measureColdPulls } from "./cold.ts";

export const COLD_KEYLESS = "cold-keyless-pull";
/** The target (and sampled process) of this scenario: a pullgate enforcing the keyless policy. */
export const PULLGATE_KEYLESS = "pullgate-keyless";
export const KEYLESS_SECTION = "7. Keyless";
const COLD_IMAGES = 200;
const PRIMERS = 20;
const WORKER_JUDGEMENTS = "pullgate_worker_judgements_total";

function fmt(v: number | undefined, decimals = 2): string {
  return v === undefined ? "–" : v.toFixed(decimals);
}

/**
 * coldPull() (cold.ts) for keyless-signed images: the same pulls, one at a time, against the registry and a
 * fresh pullgate whose policy has one keyless identity, so that every pull is a keyless verification in its
 * worker pool.
 */
export function coldKeylessPull(signerFor: SharedKeylessSigner): Scenario {
  let proxy: PullgateServer | undefined;
  let cold: SmallImage[] = [];
  let primers: SmallImage[] = [];
  /** pullgate_worker_judgements_total before the run (undefined without /metrics). */
  let judgementsBefore: number | undefined;
  const running = (): PullgateServer => {
    if (!proxy) throw new Error(`${PULLGATE_KEYLESS} is not running`);
    return proxy;
  };
  const keylessTarget: Target = {
    name: PULLGATE_KEYLESS,
    get baseUrl() {
      return running().url;
    },
    roles: { proxy: PULLGATE_KEYLESS, registry: "registry", redis: "redis" },
    pullgate: running,
  };
  const restart = async (env: Env) => {
    if (proxy) await env.stop(proxy);
    proxy = undefined;
    await env.redis.flushall();
    proxy = await startKeylessPullgate(env, PULLGATE_KEYLESS, await signerFor(env));
  };
  const judgements = async (env: Env): Promise<number | undefined> => {
    if (!env.metricsOn) return undefined;
    const s = await env.scrape(running());
    return s ? sumOf(s, WORKER_JUDGEMENTS) : undefined;
  };
  return {
    id: COLD_KEYLESS,
    section: KEYLESS_SECTION,
    title: "Cold keyless pull (first pull by tag, verdict not cached), 1 connection",
    about:
      "The cold pull of section 2 for images signed keyless (cosign's legacy `.sig`: a Fulcio-like certificate " +
      "with its SCT, the signature, the Rekor SET, all from a private Sigstore made by the bench, " +
      "test/support/private-sigstore.ts). `pullgate-keyless` enforces a policy whose one identity is a GitHub " +
      "release workflow under that Sigstore's trusted root, so each pull is judged in pullgate's verification " +
      `worker pool (${POOL_THREADS} thread${POOL_THREADS === 1 ? "" : "s"} here: the cores but one): ` +
      "certificate chain, SCT, SET, identity. 200 different images per run, each pulled once, with neither " +
      `the process's memory nor Redis holding their verdicts. \`${DIRECT_LOOKUP}\` is the floor, as in ` +
      "section 2. pullgate-keyless runs fail unless every pull was a fresh verification, judged in the pool " +
      "(pullgate_worker_judgements_total, when /metrics are on), and Redis holds the 200 verdicts afterwards. " +
      "The pullgate-keyless CPU column is the process's (main thread and workers) per cold keyless pull; " +
      "its inverse is the cold keyless pulls one core can verify and serve per second.",
    method:
      "Node client (undici, one keep-alive connection; a second one for the referrers half of direct+lookup), " +
      "200 pulls one after the other, latency from the HEAD to the GET's last byte. Before each " +
      "pullgate-keyless run (untimed): a new process, FLUSHALL, 20 other keyless-signed images pulled through " +
      "it (warms its JIT, its upstream connections and a worker thread), FLUSHALL again",
    runLength: () => `${COLD_IMAGES} pulls per run`,
    targets: (env): Target[] => [
      env.targets[DIRECT],
      { ...env.targets[DIRECT], name: DIRECT_LOOKUP },
      keylessTarget,
    ],
    metrics: [
      ...COLD_PULL_METRICS,
      { key: "pullsPerCpuS", label: "cold keyless pulls per pullgate CPU-second (per core)", decimals: 0 },
    ],
    cpu: "pull",
    setup: async (env) => {
      const signer = await signerFor(env);
      const t0 = performance.now();
      const images = await pushKeylessImages({
        signer,
        registryUrl: env.registry.url,
        repository: `${KEYLESS_PROJECT}/cold`,
        label: "kl-cold",
        count: PRIMERS + COLD_IMAGES,
        tagPrefix: "c",
      });
      primers = images.slice(0, PRIMERS);
      cold = images.slice(PRIMERS);
      env.log(
        `${COLD_KEYLESS}: signed keyless and pushed ${images.length} images in ${Math.round(performance.now() - t0)} ms`,
      );
      await restart(env);
    },
    verify: async (target) => {
      // Every image once through the target: checks them all (a denial fails here), and warms the registry.
      await sequentialPulls({
        baseUrl: target.baseUrl,
        images: [...primers, ...cold],
        lookup: target.name === DIRECT_LOOKUP,
      });
    },
    beforeRun: async (target, env) => {
      if (target.name === PULLGATE_KEYLESS) await restart(env);
      await sequentialPulls({
        baseUrl: target.baseUrl,
        images: primers,
        lookup: target.name === DIRECT_LOOKUP,
      });
      if (target.name === PULLGATE_KEYLESS) {
        await env.redis.flushall();
        expect((await env.redisVerdicts()) === 0, target, "Redis not empty after FLUSHALL");
        judgementsBefore = await judgements(env);
      }
    },
    measure: (target) => measureColdPulls(target, cold),
    checkRun: async (target, record, env) => {
      if (target.name !== PULLGATE_KEYLESS) return;
      const n = cold.length;
      await checkColdPulls(target, record, env, n);
      const after = await judgements(env);
      if (after !== undefined && judgementsBefore !== undefined) {
        const judged = after - judgementsBefore;
        expect(judged === n, target, `${judged} worker judgements for ${n} cold keyless pulls`);
      }
      const cpuS = record.cpuS[PULLGATE_KEYLESS];
      if (cpuS !== undefined && cpuS > 0) record.values.pullsPerCpuS = n / cpuS;
    },
    notes: (records) => {
      const med = (t: string, k: string) => medianOf(records, t, k);
      const added = (k: string, base: string) => {
        const a = med(PULLGATE_KEYLESS, k);
        const b = med(base, k);
        return a === undefined || b === undefined ? undefined : a - b;
      };
      const cpuUs = med(PULLGATE_KEYLESS, "cpu:proxy");
      const perCpuS = med(PULLGATE_KEYLESS, "pullsPerCpuS");
      return [
        `Added latency of a cold keyless pull through pullgate-keyless (median of its runs minus the median of ` +
          `the other's): over ${DIRECT}: p50 +${fmt(added("p50Ms", DIRECT))} ms, p99 +${fmt(added("p99Ms", DIRECT))} ms; ` +
          `over ${DIRECT_LOOKUP}: p50 +${fmt(added("p50Ms", DIRECT_LOOKUP))} ms, p99 +${fmt(added("p99Ms", DIRECT_LOOKUP))} ms.`,
        "",
        `pullgate-keyless CPU per cold keyless pull: ${fmt(cpuUs, 0)} µs (all its threads: HTTP, lookup, the ` +
          `worker's verification), i.e. ${fmt(perCpuS, 0)} cold keyless pulls per CPU-second — the keyless ` +
          `verifications one core sustains on the pull path, with ${POOL_THREADS} verification ` +
          `thread${POOL_THREADS === 1 ? "" : "s"} here. \`npm run bench:keyless\` measures the verification alone.`,
      ];
    },
    teardown: async (env) => {
      if (proxy) await env.stop(proxy);
      proxy = undefined;
    },
  };
}
