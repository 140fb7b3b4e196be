import { createHash } from "node:crypto";
import { Client } from "undici";

export type SequentialResponse = {
  path: string;
  status: number;
  contentType: string | undefined;
  digest: string;
  length: number;
};

export type SequentialResult = {
  /** Per request, in order: from sending the request to having read the whole body. */
  latenciesMs: number[];
  /** Body bytes read. */
  bytes: number;
  /** Wall time of the timed requests. */
  durationS: number;
  /** CPU (user+system) of this process over the timed requests, in seconds (the client's share). */
  cpuS: number;
};

/**
 * GETs `paths` one after the other over ONE keep-alive connection (undici Client, no pipelining), timing each
 * request from send to last body byte. `check` sees every response (status, Content-Type, body digest) and
 * throws to fail the run. `preconnect` sends an untimed GET /v2/ first, so the first timed request does not
 * pay for the TCP handshake.
 */
export async function sequentialGets(opts: {
  baseUrl: string;
  paths: readonly string[];
  headers?: Record<string, string>;
  check: (res: SequentialResponse) => void;
  preconnect?: boolean;
}): Promise<SequentialResult> {
  const client = new Client(opts.baseUrl, {
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  try {
    if (opts.preconnect !== false) {
      const res = await client.request({ path: "/v2/", method: "GET" });
      await res.body.dump();
    }
    const latenciesMs: number[] = [];
    let bytes = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const path of opts.paths) {
      const start = performance.now();
      const res = await client.request({ path, method: "GET", headers: opts.headers });
      const body = Buffer.from(await res.body.arrayBuffer());
      latenciesMs.push(performance.now() - start);
      bytes += body.length;
      const contentType = res.headers["content-type"];
      opts.check({
        path,
        status: res.statusCode,
        contentType: typeof contentType === "string" ? contentType : undefined,
        digest: `sha256:${createHash("sha256").update(body).digest("hex")}`,
        length: body.length,
      });
    }
    const durationS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { latenciesMs, bytes, durationS, cpuS: (cpu.user + cpu.system) / 1e6 };
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}
