import { availableParallelism } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { sequentialPulls } from "../client.ts";
import { type DistinctPullsResult, distinctPulls } from "../distinct-pulls.ts";
import type { SmallImage } from "../images.ts";
import { KEYLESS_PROJECT, pushKeylessImages } from "../keyless-images.ts";
import { POOL_THREADS, type SharedKeylessSigner, startKeylessPullgate } from "../keyless-pullgate.ts";
import { expectClean, runAutocannon } from "../load.ts";
import { sumOf } from "../metrics.ts";
import { threadCpuTicks } from "../proc.ts";
import {
  CONTAINERD_ACCEPT,
  decisionCounts,
  type Env,
  expect,
  medianOf,
  percentile,
  type RunRecord,
  type Scenario,
  type Target,
} from "../scenario.ts";
import type { PullgateServer } from "../servers.ts";
import { KEYLESS_SECTION } from "./cold-keyless.ts";

export const KEYLESS_WARM_UNDER_HERD = "keyless-warm-under-herd";
/** The two targets: the same pullgate process, with nothing else to do, and while the herd runs. */
export const WARM_IDLE = "idle process";
export const WARM_DURING_HERD = "during keyless herd";
/** The issue's goal: warm p99 during the herd within 20% of the idle process's. */
export const HERD_P99_RATIO_GOAL = 1.2;
const PROCESS = "pullgate-keyless-herd";
/** Distinct cold pulls in flight at once (pullgate's default verification.maxConcurrentLookups). */
const HERD_CONCURRENCY = 32;
const MAX_RUN_LENGTH_S = 5;
/** Pulled in setup to estimate the herd's rate (and warm the pool); then the supply is signed to fit it. */
const CALIBRATION_PULLS = 4 * HERD_CONCURRENCY;
/** Images signed per run over the estimate, so that the herd does not run dry before the warm loop ends. */
const SUPPLY_MARGIN = 1.5;
/** Seconds of herd per run beyond the warm loop's window (autocannon's start, the pulls in flight at the end). */
const SUPPLY_SLACK_S = 2;
const MAX_SUPPLY_PER_RUN = 20_000;
const WORKER_JUDGEMENTS = "pullgate_worker_judgements_total";

type HerdRaw = Omit<DistinctPullsResult, "latenciesMs"> & {
  /** Share of the warm loop's window the herd ran for (1 unless the supply ran out). */
  coverage: number;
  judgements: number | undefined;
};

function fmt(v: number | undefined, decimals = 2): string {
  return v === undefined ? "–" : v.toFixed(decimals);
}

/**
 * One keyless pullgate process; a warm pull loop on one image whose verdict it holds, measured with the
 * process otherwise idle and while a herd of first pulls of distinct keyless-signed images (each a keyless
 * verification in the worker pool) goes through the same process. Run by run, idle and herd alternate.
 */
export function keylessWarmUnderHerd(signerFor: SharedKeylessSigner): Scenario {
  let proxy: PullgateServer | undefined;
  let warm: SmallImage | undefined;
  const supply: SmallImage[] = [];
  let taken = 0;
  let batches = 0;
  /** Herd pulls per second: the calibration's, then the fastest run's. */
  let ratePerS = 0;
  let runLengthS = MAX_RUN_LENGTH_S;
  const running = (): PullgateServer => {
    if (!proxy) throw new Error(`${PROCESS} is not running`);
    return proxy;
  };
  const warmImage = (): SmallImage => {
    if (!warm) throw new Error(`${KEYLESS_WARM_UNDER_HERD}: no warm image`);
    return warm;
  };
  const target = (name: string): Target => ({
    name,
    get baseUrl() {
      return running().url;
    },
    roles: { proxy: PROCESS, registry: "registry", redis: "redis" },
    pullgate: running,
  });
  const take = (): SmallImage | undefined => (taken < supply.length ? supply[taken++] : undefined);
  const pushBatch = async (env: Env, count: number): Promise<void> => {
    const signer = await signerFor(env);
    const batch = batches++;
    const t0 = performance.now();
    const images = await pushKeylessImages({
      signer,
      registryUrl: env.registry.url,
      repository: `${KEYLESS_PROJECT}/herd`,
      label: `kl-herd-${batch}-`,
      count,
      tagPrefix: `b${batch}-`,
    });
    supply.push(...images);
    env.log(
      `${KEYLESS_WARM_UNDER_HERD}: signed keyless and pushed ${count} herd images in ${Math.round(performance.now() - t0)} ms`,
    );
  };
  /** First pulls of the next `count` images of the supply (all of them must pass). */
  const pullNext = async (count: number, concurrency: number): Promise<DistinctPullsResult> => {
    let left = count;
    const r = await distinctPulls({
      baseUrl: running().url,
      next: () => (left-- > 0 ? take() : undefined),
      concurrency,
    });
    if (r.ok !== count)
      throw new Error(
        `${PROCESS}: ${r.ok} of ${count} keyless first pulls passed: ${JSON.stringify(r.failures)} ${r.failureSamples.join("; ")}`,
      );
    return r;
  };
  const judgements = async (env: Env): Promise<number | undefined> => {
    if (!env.metricsOn) return undefined;
    const s = await env.scrape(running());
    return s ? sumOf(s, WORKER_JUDGEMENTS) : undefined;
  };
  const herdOf = (record: RunRecord): HerdRaw | undefined => (record.raw as { herd?: HerdRaw }).herd;

  return {
    id: KEYLESS_WARM_UNDER_HERD,
    section: KEYLESS_SECTION,
    title: `Warm pull on the same process while ${HERD_CONCURRENCY} keyless first pulls are in flight, 1 connection`,
    about:
      `One pullgate process (\`${PROCESS}\`, the keyless policy of the previous scenario, Redis) and a warm pull ` +
      "loop — HEAD by tag + GET by digest of one keyless-signed image whose verdict it holds in memory, as in " +
      "section 1 — measured twice per run: with the process otherwise idle, and while a herd of first pulls of " +
      "distinct keyless-signed images goes through the same process, " +
      `${HERD_CONCURRENCY} in flight at all times (pullgate's default verification.maxConcurrentLookups), each ` +
      "image never pulled before, so each is a signature lookup plus a keyless verification in the worker pool " +
      `(${POOL_THREADS} thread${POOL_THREADS === 1 ? "" : "s"} here). The herd keeps the pool's queue full: the ` +
      "worst case for the event loop the warm pulls share. The herd's rate is estimated in setup and the images " +
      "it needs are signed before each run (outside the measurement). Runs fail on a denial, on a warm pull " +
      "that was not a cached allow, or unless every herd pull was one lookup and one worker judgement " +
      "(/metrics, when on). The registry and Redis serve both the warm loop's HEAD and the herd, and on a small " +
      "machine every process shares the same cores: what the herd costs the warm p99 includes that.",
    method:
      "autocannon 1 connection repeating HEAD + GET of the warm image (latency: the two back to back); the herd " +
      `from the bench process (undici, ${HERD_CONCURRENCY} keep-alive connections, each pulling one new image ` +
      "after another, HEAD by tag then GET by digest), started before the warm loop and stopped when it ends",
    runLength: (s) => `${s} s runs`,
    targets: (): Target[] => [target(WARM_IDLE), target(WARM_DURING_HERD)],
    metrics: [
      { key: "p50Ms", label: "warm pull p50 ms", decimals: 2 },
      { key: "p99Ms", label: "warm pull p99 ms", decimals: 2 },
      { key: "headP99Ms", label: "warm HEAD by tag p99 ms (asks the registry)", decimals: 2 },
      { key: "getP99Ms", label: "warm GET by digest p99 ms (from pullgate's memory)", decimals: 2 },
      { key: "pullsPerS", label: "warm pulls/s", decimals: 0 },
      { key: "mainThreadBusy", label: "pullgate main thread busy (share of the run)", decimals: 2 },
      { key: "processCores", label: "pullgate CPU, all threads (cores)", decimals: 2 },
      { key: "machineCores", label: "machine CPU busy (cores)", decimals: 2 },
      { key: "herdPullsPerS", label: "herd: keyless first pulls/s", decimals: 0 },
      { key: "herdP50Ms", label: "herd: pull p50 ms", decimals: 1 },
      { key: "herdP99Ms", label: "herd: pull p99 ms", decimals: 1 },
      { key: "herdOk", label: "herd: pulls passed", decimals: 0 },
    ],
    durationS: (base) => {
      runLengthS = Math.min(base, MAX_RUN_LENGTH_S);
      return runLengthS;
    },
    warmupS: 2,
    setup: async (env) => {
      const signer = await signerFor(env);
      const [image] = await pushKeylessImages({
        signer,
        registryUrl: env.registry.url,
        repository: `${KEYLESS_PROJECT}/warm`,
        label: "kl-warm",
        count: 1,
        tagPrefix: "v",
      });
      warm = image;
      proxy = await startKeylessPullgate(env, PROCESS, signer);
      // The warm image's verdict, then a calibration herd: the rate the supply is signed for.
      await sequentialPulls({ baseUrl: running().url, images: [warmImage()] });
      await pushBatch(env, CALIBRATION_PULLS);
      const r = await pullNext(CALIBRATION_PULLS, HERD_CONCURRENCY);
      ratePerS = r.ok / (r.wallMs / 1000);
      env.log(`${KEYLESS_WARM_UNDER_HERD}: calibration herd ${ratePerS.toFixed(0)} keyless first pulls/s`);
    },
    verify: async (t) => {
      await sequentialPulls({ baseUrl: t.baseUrl, images: [warmImage()] });
    },
    beforeRun: async (t, env) => {
      if (t.name !== WARM_DURING_HERD) return;
      // Enough unpulled images for this run, and a worker per pool thread (piscina ends idle ones after 30 s).
      const prime = 2 * POOL_THREADS;
      const needed = Math.min(
        MAX_SUPPLY_PER_RUN,
        Math.ceil(ratePerS * (runLengthS + SUPPLY_SLACK_S) * SUPPLY_MARGIN) + prime,
      );
      const left = supply.length - taken;
      if (left < needed) await pushBatch(env, needed - left);
      await pullNext(prime, prime);
      await sleep(300); // their decisions reach the log before the run's part of it starts
    },
    measure: async (t, durationS, env, run) => {
      const withHerd = t.name === WARM_DURING_HERD && run > 0;
      const image = warmImage();
      const judgedBefore = withHerd ? await judgements(env) : undefined;
      const pid = running().proc.pid;
      const main0 = await threadCpuTicks(pid, pid);
      const stop = new AbortController();
      const t0 = performance.now();
      const herd = withHerd
        ? distinctPulls({
            baseUrl: t.baseUrl,
            next: take,
            concurrency: HERD_CONCURRENCY,
            signal: stop.signal,
          })
        : Promise.resolve(undefined);
      const [load, h] = await Promise.all([
        runAutocannon(
          {
            url: t.baseUrl,
            connections: 1,
            durationS,
            headers: { accept: CONTAINERD_ACCEPT },
            sequence: [
              { method: "HEAD", path: `/v2/${image.repository}/manifests/${image.tag}` },
              { method: "GET", path: `/v2/${image.repository}/manifests/${image.digest}` },
            ],
          },
          env.scratch,
        ).finally(() => stop.abort()),
        herd,
      ]);
      const windowMs = performance.now() - t0;
      const mainCpuS = ((await threadCpuTicks(pid, pid)) - main0) / env.ticks;
      // pullgate logs a pull's decision after answering it: let the herd's last ones reach the log.
      if (h) await sleep(300);
      expectClean(load, `${t.name} warm pull`);
      const values: Record<string, number> = {
        pullsPerS: load.sequences / load.durationS,
        p50Ms: load.sequence?.p50 ?? Number.NaN,
        p99Ms: load.sequence?.p99 ?? Number.NaN,
        headP99Ms: load.byMethod.HEAD?.p99 ?? Number.NaN,
        getP99Ms: load.byMethod.GET?.p99 ?? Number.NaN,
        mainThreadBusy: mainCpuS / (windowMs / 1000),
      };
      let herdRaw: HerdRaw | undefined;
      if (h) {
        const { latenciesMs, ...rest } = h;
        const judgedAfter = await judgements(env);
        herdRaw = {
          ...rest,
          coverage: h.exhaustedAtMs === undefined ? 1 : Math.min(1, h.exhaustedAtMs / windowMs),
          judgements:
            judgedAfter === undefined || judgedBefore === undefined ? undefined : judgedAfter - judgedBefore,
        };
        values.herdOk = h.ok;
        values.herdPullsPerS = h.ok / (h.wallMs / 1000);
        if (latenciesMs.length > 0) {
          values.herdP50Ms = percentile(latenciesMs, 50);
          values.herdP99Ms = percentile(latenciesMs, 99);
        }
        ratePerS = Math.max(ratePerS, values.herdPullsPerS);
        if (h.exhausted)
          env.log(
            `${KEYLESS_WARM_UNDER_HERD}: the herd ran out of images after ${(herdRaw.coverage * 100).toFixed(0)}% of the run`,
          );
      }
      return {
        values,
        units: load.sequences,
        durationS: load.durationS,
        clientCpuS: load.clientCpuTicks / env.ticks + (h?.cpuS ?? 0),
        raw: { load, herd: herdRaw },
      };
    },
    checkRun: async (t, record, env) => {
      record.values.processCores = (record.cpuS[PROCESS] ?? 0) / record.wallS;
      record.values.machineCores = (record.cpuS.machine ?? 0) / record.wallS;
      const d = decisionCounts(record);
      const herd = herdOf(record);
      expect(d.deny === 0 && d.other === 0, t, `decisions ${JSON.stringify(record.decisions)}`);
      if (!herd) {
        expect(d.verified === 0, t, `a warm run verified: ${JSON.stringify(record.decisions)}`);
        if (env.metricsOn && record.metrics)
          expect(record.metrics.lookups === 0, t, `${record.metrics.lookups} lookups in a warm run`);
        return;
      }
      const failed = Object.values(herd.failures).reduce((a, b) => a + b, 0);
      expect(
        failed === 0,
        t,
        `${failed} herd pulls failed: ${JSON.stringify(herd.failures)} ${herd.failureSamples.join("; ")}`,
      );
      // A herd pull's HEAD starts its lookup; when the verdict is in before the GET comes, the GET's decision
      // is a memory hit. So the log bounds the verifications, and /metrics count them.
      expect(
        d.verified > 0 && d.verified <= herd.ok,
        t,
        `${d.verified} fresh verifications for ${herd.ok} herd pulls: ${JSON.stringify(record.decisions)}`,
      );
      if (env.metricsOn && record.metrics)
        expect(
          record.metrics.lookups === herd.ok,
          t,
          `${record.metrics.lookups} lookups, ${herd.ok} herd pulls`,
        );
      if (herd.judgements !== undefined)
        expect(herd.judgements === herd.ok, t, `${herd.judgements} worker judgements, ${herd.ok} herd pulls`);
    },
    notes: (records) => {
      const idle = medianOf(records, WARM_IDLE, "p99Ms");
      const busy = medianOf(records, WARM_DURING_HERD, "p99Ms");
      const ratio = idle !== undefined && busy !== undefined && idle > 0 ? busy / idle : undefined;
      const rate = medianOf(records, WARM_DURING_HERD, "herdPullsPerS");
      const coverages = records.map(herdOf).filter((h): h is HerdRaw => h !== undefined);
      const short = coverages.filter((h) => h.coverage < 1);
      const at = (target: string, key: string, decimals: number) =>
        fmt(medianOf(records, target, key), decimals);
      return [
        `Warm pull p99 (median of the runs): ${fmt(idle)} ms on the idle process, ${fmt(busy)} ms during the ` +
          `keyless herd: ${fmt(ratio)}× (goal ≤ ${HERD_P99_RATIO_GOAL}×).`,
        "",
        `The herd: ${fmt(rate, 0)} keyless first pulls per second through one process with ${POOL_THREADS} ` +
          `verification thread${POOL_THREADS === 1 ? "" : "s"} (${fmt(rate === undefined ? undefined : rate / POOL_THREADS, 0)} per thread), ` +
          `${supply.length} images signed for it (calibration included).` +
          (short.length > 0
            ? ` It ran out of images in ${short.length} run(s), covering ${short.map((h) => `${(h.coverage * 100).toFixed(0)}%`).join(", ")} of the window.`
            : ""),
        "",
        `Where the time goes (medians): pullgate's main thread was busy ${at(WARM_IDLE, "mainThreadBusy", 2)} of ` +
          `the run when idle and ${at(WARM_DURING_HERD, "mainThreadBusy", 2)} during the herd; the process used ` +
          `${at(WARM_IDLE, "processCores", 2)} and ${at(WARM_DURING_HERD, "processCores", 2)} cores, the machine ` +
          `${at(WARM_IDLE, "machineCores", 2)} and ${at(WARM_DURING_HERD, "machineCores", 2)} of its ` +
          `${availableParallelism()}. The warm GET by digest never leaves pullgate (its p99 is the event loop's ` +
          "delay plus the CPU it gets); the HEAD by tag also waits for the registry, which serves the herd too.",
      ];
    },
    teardown: async (env) => {
      if (proxy) await env.stop(proxy);
      proxy = undefined;
    },
  };
}
