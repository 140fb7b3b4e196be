import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import {
  type PullgateMetrics,
  recordFailure,
  SPAN_ATTR,
  type Span,
  spanStarter,
} from "../telemetry/index.ts";
import {
  type Authority,
  judgeSignatures,
  type PulledRepository,
  type Requirements,
  type RequirementsSpec,
  type SignatureEvidence,
  type SignerIdentitySpec,
  type TransparencyLogMode,
  type Verdict,
} from "../verify/index.ts";

/** What crosses to a worker: plain data only. */
export interface JudgeTask {
  digest: string;
  evidence: readonly SignatureEvidence[];
  repository?: PulledRepository | undefined;
  authorities: Array<
    | {
        kind: "key";
        name: string;
        pem: string;
        transparencyLog: TransparencyLogMode;
        root: RootRef;
        notBefore: number | undefined;
        notAfter: number | undefined;
      }
    | { kind: "keyless"; name: string; spec: SignerIdentitySpec; root: RootRef }
  >;
  /** The requirements as written (conditions are compiled again in the worker, once per text). */
  requirements: RequirementsSpec | undefined;
  now: number | undefined;
}
interface RootRef {
  name: string;
  sha256: string;
  json: string;
}

export interface VerificationPoolOptions {
  /** Worker threads (default: the cores but one, at least 1). */
  threads?: number;
  metrics?: Pick<PullgateMetrics, "workerJudgements" | "workerPool"> | undefined;
}

/**
 * Keyless verifications cost about 7 ms of CPU each (certificate chain, SCT, SET): they run in worker
 * threads, so warm pulls on the event loop keep their latency while cold keyless pulls are verified.
 * Key-only policies are judged in process (a key check is ~0.1 ms: a thread hop would cost more).
 */
export class VerificationPool {
  readonly #pool: Piscina<JudgeTask, Verdict>;
  readonly #metrics: VerificationPoolOptions["metrics"];
  /** Tasks handed to piscina and not settled yet (queued or on a thread). */
  #inflight = 0;

  constructor(opts: VerificationPoolOptions = {}) {
    const threads = opts.threads ?? Math.max(1, availableParallelism() - 1);
    this.#metrics = opts.metrics;
    // From the sources the worker is verify-worker.ts (Node strips its types); in dist/, verify-worker.js.
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    this.#pool = new Piscina({
      filename: new URL(`./verify-worker${ext}`, import.meta.url).href,
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 30_000,
      loadBalancer: idleThreadTellingTheTask,
    });
    const p = this.#pool;
    const running = () => Math.max(0, this.#inflight - p.queueSize);
    opts.metrics?.workerPool.observe(() => ({
      waiting: p.queueSize,
      running: running(),
      threads: p.threads.length,
      utilization: p.utilization,
    }));
  }

  /** judgeSignatures, in a worker when a keyless identity may need a certificate verified. */
  async judge(input: {
    digest: string;
    authorities: readonly Authority[];
    evidence: readonly SignatureEvidence[];
    repository?: PulledRepository | undefined;
    requirements?: Requirements | undefined;
    now?: number | undefined;
    signal?: AbortSignal | undefined;
  }): Promise<Verdict> {
    if (!input.authorities.some((a) => a.kind === "keyless")) return judgeSignatures(input);
    const task: JudgeTask = {
      digest: input.digest,
      evidence: input.evidence,
      repository: input.repository,
      requirements: input.requirements?.spec,
      now: input.now,
      authorities: input.authorities.map((a) => {
        const root = { name: a.root.name, sha256: a.root.sha256, json: a.root.json };
        return a.kind === "key"
          ? {
              kind: "key",
              name: a.name,
              pem: a.key.key.export({ type: "spki", format: "pem" }).toString(),
              transparencyLog: a.transparencyLog,
              root,
              notBefore: a.notBefore,
              notAfter: a.notAfter,
            }
          : { kind: "keyless", name: a.name, spec: a.identity.spec, root };
      }),
    };
    this.#metrics?.workerJudgements.inc();
    this.#inflight++;
    // Spans on this thread (workers start no SDK): the wait for a thread, then the judgement on it.
    const start = spanStarter();
    const wait = start("pullgate.pool.wait", { [SPAN_ATTR.poolQueued]: this.#pool.queueSize });
    let judging: Span | undefined;
    const onThread = () => {
      if (judging) return;
      wait.end();
      judging = start("pullgate.pool.judge", { [SPAN_ATTR.poolThreads]: this.#pool.threads.length });
    };
    const hooks: TaskHooks = { onThread };
    return this.#pool
      .run({ ...task, [Piscina.queueOptionsSymbol]: hooks }, input.signal ? { signal: input.signal } : {})
      .then(
        (verdict) => {
          judging?.setAttribute(SPAN_ATTR.verifyStatus, verdict.status);
          return verdict;
        },
        (err: unknown) => {
          // Aborted or failed while waiting (no thread took it), or on its thread.
          recordFailure(judging ?? wait, err);
          throw err;
        },
      )
      .finally(() => {
        this.#inflight--;
        (judging ?? wait).end();
      });
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}

/** What a task carries (under piscina's queue-options symbol; not sent to the worker). */
interface TaskHooks {
  /** A thread takes the task: its wait ends, its judgement starts. */
  onThread(): void;
}

type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>["loadBalancer"]>;

/**
 * piscina's own choice of thread with one task per thread (the first idle one, else none: the task
 * waits), telling the task when it gets one. Every task passes here on its way to a thread, whichever
 * queue it waited in (piscina keeps tasks with an abort signal, as pullgate's all are, out of the
 * task queue), so this is where the pool wait span ends.
 */
const idleThreadTellingTheTask: LoadBalancer = (task, workers) => {
  const worker = workers.find((w) => w.currentUsage === 0) ?? null;
  if (worker) hooksOf(task)?.onThread();
  return worker;
};

function hooksOf(task: Parameters<LoadBalancer>[0]): TaskHooks | undefined {
  return (task[Piscina.queueOptionsSymbol as keyof typeof task] as TaskHooks | null | undefined) ?? undefined;
}
