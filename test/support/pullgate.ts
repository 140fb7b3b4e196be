import { randomBytes } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { DepsOverrides } from "../../src/app.ts";
import { parseConfig } from "../../src/config/index.ts";
import { type RunningPullgate, startPullgate } from "../../src/server/index.ts";
import { createMemoryLogger } from "../../src/telemetry/index.ts";

export type TestPullgate = RunningPullgate & {
  /** "127.0.0.1:PORT" of the proxy listener. */
  host: string;
  logs: ReturnType<typeof createMemoryLogger>["records"];
};

/** The Redis HMAC key of every test pullgate of this process (replicas sharing a Redis share it). */
export const TEST_REDIS_HMAC_KEY = randomBytes(32).toString("hex");
/** The environment variable startTestPullgate puts TEST_REDIS_HMAC_KEY in. */
export const TEST_REDIS_HMAC_KEY_ENV = "PULLGATE_TEST_REDIS_HMAC_KEY";

/** The `redis:` section of a test pullgate's config: the URL and the shared HMAC key (from its env). */
export function redisYaml(url: string): string {
  return `redis:\n  url: ${JSON.stringify(url)}\n  hmacKeyEnv: ${TEST_REDIS_HMAC_KEY_ENV}\n`;
}

/**
 * pullgate in this process, on free loopback ports, in front of the given upstreams (YAML list items).
 * In-process so tests can read its log records and upstream counters; the CLI test covers the binary.
 * Its environment holds only TEST_REDIS_HMAC_KEY (in TEST_REDIS_HMAC_KEY_ENV), plus `opts.env`.
 */
export async function startTestPullgate(
  upstreamsYaml: string,
  extraYaml = "",
  opts: {
    adminToken?: string;
    tls?: { certPath: string; keyPath: string };
    env?: Record<string, string>;
    /** More settings of the admin listener (e.g. `jwt: {…}`), as YAML lines indented under `admin:`. */
    adminYaml?: string;
    /** Timings the config file does not set (redisReconcileMs, trustRootReloadIntervalMs). */
    overrides?: Pick<DepsOverrides, "redisReconcileMs" | "trustRootReloadIntervalMs">;
  } = {},
): Promise<TestPullgate> {
  const logger = createMemoryLogger();
  const token =
    (opts.adminToken ? `\n  token: ${JSON.stringify(opts.adminToken)}` : "") +
    (opts.adminYaml ? `\n${opts.adminYaml.replace(/\n$/, "")}` : "");
  const tls = opts.tls
    ? `tls: { cert: ${JSON.stringify(opts.tls.certPath)}, key: ${JSON.stringify(opts.tls.keyPath)}, reloadIntervalMs: 200 }\n`
    : "";
  const config = parseConfig(
    `listen: "127.0.0.1:0"\n${tls}admin:\n  listen: "127.0.0.1:0"${token}\nshutdown: { drainTimeoutMs: 2000 }\nupstreams:\n${upstreamsYaml}\n${extraYaml}`,
    {
      source: "test",
      baseDir: process.cwd(),
      env: { [TEST_REDIS_HMAC_KEY_ENV]: TEST_REDIS_HMAC_KEY, ...opts.env },
    },
  );
  const running = await startPullgate(config, { logger, ...opts.overrides });
  return { ...running, host: new URL(running.proxyUrl).host, logs: logger.records };
}

export type RawResponse = { status: number; headers: IncomingHttpHeaders; body: Buffer };

/**
 * A raw HTTP/1.1 request: the path is sent exactly as given (no URL normalization, unlike fetch), so
 * path tricks like "..", "%2F" or "//" reach the server as written.
 */
export function rawRequest(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers["content-length"] = String(Buffer.byteLength(opts.body));
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: opts.method ?? "GET", headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

export function errorCodeOf(res: RawResponse): string | undefined {
  try {
    return (JSON.parse(res.body.toString("utf8")) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}
