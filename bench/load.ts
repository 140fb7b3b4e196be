import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runTool } from "./tools.ts";

/** What bench/autocannon-worker.ts runs: keep-alive connections, one request in flight on each. */
export type LoadSpec = {
  /** Origin, "http://127.0.0.1:PORT". */
  url: string;
  connections: number;
  /** Run for this long (default 10 s) ... */
  durationS?: number;
  /** ... or until this many responses arrived. */
  amount?: number;
  /** Per-request timeout (default 10 s): the connection is dropped and the request counted as a timeout. */
  timeoutS?: number;
  headers?: Record<string, string>;
  /** Each connection sends these in order, again and again (HEAD then GET = one pull). */
  sequence?: Array<{ method: "GET" | "HEAD"; path: string }>;
  /** Or: every request takes the next of these paths (shared by all connections, in order, wrapping). */
  paths?: string[];
  pathsMethod?: "GET" | "HEAD";
};

export type LatencySummary = {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
};

export type LoadReport = {
  /** Responses received within the run (any status). */
  requests: number;
  /** Completed sequences (pulls); = requests without a sequence. */
  sequences: number;
  /** Bytes read, headers included. */
  bytes: number;
  durationS: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  errorMessages: Record<string, number>;
  /** Per request, ms: from writing the request to its last byte. */
  latency: LatencySummary | undefined;
  byMethod: Record<string, LatencySummary | undefined>;
  /** Per sequence, ms: the sum of its requests' latencies (one pull, without client think time). */
  sequence: LatencySummary | undefined;
  /** CPU of the worker, as it measured itself (the bench uses the tool's CPU from /proc instead). */
  cpuS: number;
};

export type LoadRun = LoadReport & { clientCpuTicks: number };

const WORKER = fileURLToPath(new URL("./autocannon-worker.ts", import.meta.url));
let specCounter = 0;

/** Runs autocannon (bench/autocannon-worker.ts) in its own Node process. Throws when it fails to report. */
export async function runAutocannon(spec: LoadSpec, dir: string): Promise<LoadRun> {
  const file = join(dir, `autocannon-${process.pid}-${specCounter++}.json`);
  await writeFile(file, JSON.stringify(spec));
  const limitMs = ((spec.durationS ?? 0) + (spec.timeoutS ?? 10) + 120) * 1000;
  const run = await runTool(process.execPath, [WORKER, file], limitMs);
  const line = run.stdout.split("\n").find((l) => l.startsWith("AUTOCANNON_JSON "));
  if (run.code !== 0 || !line) {
    throw new Error(
      `autocannon against ${spec.url}: no report (exit ${run.code})\nstdout:\n${run.stdout.slice(-2000)}\nstderr:\n${run.stderr.slice(-2000)}`,
    );
  }
  const report = JSON.parse(line.slice("AUTOCANNON_JSON ".length)) as LoadReport;
  return { ...report, clientCpuTicks: run.cpuTicks };
}

/** Throws unless every response had one of `statuses` and nothing failed or timed out. */
export function expectClean(run: LoadRun, what: string, statuses: number[] = [200]): void {
  const wrong = Object.entries(run.statuses).filter(([s]) => !statuses.includes(Number(s)));
  if (wrong.length > 0 || run.errors > 0 || run.timeouts > 0 || run.requests === 0) {
    throw new Error(
      `${what}: ${run.requests} responses, statuses ${JSON.stringify(run.statuses)}, ${run.errors} errors ` +
        `(${JSON.stringify(run.errorMessages)}), ${run.timeouts} timeouts`,
    );
  }
}
