/**
 * One autocannon run in its own process (bench/load.ts starts it; its CPU is measured apart from the servers'):
 * `node bench/autocannon-worker.ts SPEC.json`. Prints one `AUTOCANNON_JSON {...}` line (a LoadReport).
 *
 * Two things autocannon does not do by itself:
 *  - HEAD: its HTTP parser (http-parser-js) waits for Content-Length body bytes after a HEAD answer, like wrk
 *    4.1, and hangs until the timeout. The parser's headers-complete callback is wrapped to say "no body" when
 *    the request being answered is a HEAD (what Node's own client does).
 *  - Sub-millisecond percentiles: autocannon's histogram has 1 ms resolution. Every response's latency (from
 *    writing the request to the last byte, hrtime) is kept instead, and percentiles are exact (nearest rank).
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { LatencySummary, LoadReport, LoadSpec } from "./load.ts";

type PendingRequest = { req?: { method?: string } };
type AutocannonClient = {
  parser: Record<number, unknown>;
  pipelinedRequests: { peek(): PendingRequest | undefined };
  requestIterator: { currentRequest?: { method?: string } };
};
type AutocannonRequest = {
  method: string;
  path: string;
  headers?: Record<string, string>;
  setupRequest?: (req: AutocannonRequest) => AutocannonRequest;
};
type AutocannonOptions = {
  url: string;
  connections: number;
  pipelining: number;
  duration?: number;
  amount?: number;
  timeout: number;
  headers?: Record<string, string>;
  requests: AutocannonRequest[];
  setupClient: (client: AutocannonClient) => void;
};
type AutocannonResult = { errors: number; timeouts: number; resets: number; non2xx: number };
type Tracker = {
  on(
    event: "response",
    fn: (client: AutocannonClient, status: number, bytes: number, ms: number) => void,
  ): void;
  on(event: "start", fn: () => void): void;
  on(event: "reqError", fn: (err: Error) => void): void;
};
type Autocannon = (
  opts: AutocannonOptions,
  cb: (err: Error | null, result: AutocannonResult) => void,
) => Tracker;

const require = createRequire(import.meta.url);
const autocannon = require("autocannon") as Autocannon;
const { HTTPParser } = require("http-parser-js") as { HTTPParser: { kOnHeadersComplete: number } };

/** Makes the client's parser skip the body of answers to HEAD requests. */
function headSafe(client: AutocannonClient): void {
  const key = HTTPParser.kOnHeadersComplete;
  let inner: ((info: unknown) => unknown) | undefined;
  const wrapped = (info: unknown): unknown => {
    const skip = inner?.(info);
    return client.pipelinedRequests.peek()?.req?.method === "HEAD" ? true : skip;
  };
  Object.defineProperty(client.parser, key, {
    configurable: true,
    get: () => wrapped,
    set: (fn: (info: unknown) => unknown) => {
      inner = fn;
    },
  });
}

export function summarize(values: number[]): LatencySummary | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) =>
    sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1] as number;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: sorted[sorted.length - 1] as number,
    mean: sum / sorted.length,
  };
}

async function main(): Promise<void> {
  const specFile = process.argv[2];
  if (!specFile) throw new Error("usage: autocannon-worker.ts SPEC.json");
  const spec = JSON.parse(await readFile(specFile, "utf8")) as LoadSpec;
  let requests: AutocannonRequest[];
  if (spec.paths) {
    const paths = spec.paths;
    let next = 0;
    requests = [
      {
        method: spec.pathsMethod ?? "GET",
        path: paths[0] as string,
        setupRequest: (req) => ({ ...req, path: paths[next++ % paths.length] as string }),
      },
    ];
  } else {
    requests = (spec.sequence ?? []).map((r) => ({ method: r.method, path: r.path }));
  }
  if (requests.length === 0) throw new Error("spec has neither sequence nor paths");
  const seqLength = spec.paths ? 1 : requests.length;

  const perRequest: number[] = [];
  const perMethod = new Map<string, number[]>();
  const perSequence: number[] = [];
  const statuses: Record<string, number> = {};
  const partial = new Map<AutocannonClient, { sum: number; n: number }>();
  let bytes = 0;
  let counted = 0;
  let t0 = 0;
  let windowEnd = Number.POSITIVE_INFINITY;
  let lastAt = 0;
  const errorMessages = new Map<string, number>();
  let errors = 0;
  let timeouts = 0;
  const cpu0 = process.cpuUsage();

  await new Promise<void>((resolve, reject) => {
    const opts: AutocannonOptions = {
      url: spec.url,
      connections: spec.connections,
      pipelining: 1,
      timeout: spec.timeoutS ?? 10,
      requests,
      setupClient: headSafe,
    };
    if (spec.headers) opts.headers = spec.headers;
    if (spec.amount !== undefined) opts.amount = spec.amount;
    else opts.duration = spec.durationS ?? 10;
    const tracker = autocannon(opts, (err, result) => {
      if (err) reject(err);
      else {
        errors = result.errors;
        timeouts = result.timeouts;
        resolve();
      }
    });
    tracker.on("start", () => {
      t0 = performance.now();
      if (spec.amount === undefined) windowEnd = t0 + (spec.durationS ?? 10) * 1000;
    });
    tracker.on("reqError", (e) => {
      const k = e.message || String(e);
      errorMessages.set(k, (errorMessages.get(k) ?? 0) + 1);
    });
    tracker.on("response", (client, status, resBytes, ms) => {
      const now = performance.now();
      if (now > windowEnd) return; // answered after the measured window: autocannon stops at its next tick
      lastAt = now;
      counted++;
      bytes += resBytes;
      statuses[status] = (statuses[status] ?? 0) + 1;
      perRequest.push(ms);
      const method = client.requestIterator.currentRequest?.method ?? "GET";
      let list = perMethod.get(method);
      if (!list) {
        list = [];
        perMethod.set(method, list);
      }
      list.push(ms);
      if (seqLength > 1) {
        const p = partial.get(client) ?? { sum: 0, n: 0 };
        p.sum += ms;
        p.n++;
        if (p.n === seqLength) {
          perSequence.push(p.sum);
          p.sum = 0;
          p.n = 0;
        }
        partial.set(client, p);
      }
    });
  });
  const report: LoadReport = {
    requests: counted,
    sequences: seqLength > 1 ? perSequence.length : counted,
    bytes,
    durationS: ((spec.amount === undefined ? windowEnd : lastAt) - t0) / 1000,
    statuses,
    errors,
    timeouts,
    errorMessages: Object.fromEntries(errorMessages),
    latency: summarize(perRequest),
    byMethod: Object.fromEntries([...perMethod].map(([m, v]) => [m, summarize(v)])),
    sequence: seqLength > 1 ? summarize(perSequence) : undefined,
    cpuS: 0,
  };
  const cpu = process.cpuUsage(cpu0);
  report.cpuS = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(`AUTOCANNON_JSON ${JSON.stringify(report)}\n`);
}

await main();
