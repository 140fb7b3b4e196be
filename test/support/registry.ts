import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import {
  type DockerRegistry,
  REGISTRY_PROBE_USER_AGENT,
  startDockerRegistry,
  waitFor,
} from "../../src/local/index.ts";
import { makeTempDir, removeDir } from "./process.ts";

/**
 * A real upstream registry for integration tests: src/local's docker-registry (CNCF distribution 2.8.2) in
 * its own temp dir, at log level info with the access log on, so that tests can see every request it got.
 *
 * What distribution 2.8 logs (verified with 2.8.2+ds1):
 *  - stdout: gorilla/handlers "combined" access log, one line for EVERY request, including 401s and 404s for
 *    unknown routes: `127.0.0.1 - - [23/Nov/2026:16:56:34 +0000] "GET /v2/x/manifests/v1?ns=a%3Ab HTTP/1.1" 404 92 "" "ua"`.
 *    It has no Host header, and is written after the response has been sent.
 *  - stderr: logrus JSON. Requests that reach a /v2 handler get a `"msg":"response completed"` (or "... with
 *    error") line with `http.request.method`, `http.request.uri` (with query), `http.request.host`,
 *    `http.request.useragent`, `http.request.id`, `http.response.status`, `http.response.written`. Requests
 *    rejected by auth (401) only get a warning line with the request fields and no status; unknown routes get
 *    nothing.
 * So requests() takes the access log as the authoritative list and fills `host` from the JSON lines.
 */

export type RegistryRequest = {
  method: string;
  /** Request URI as sent, with the query string: `/v2/proj/app/manifests/v1?ns=127.0.0.1%3A5000`. */
  path: string;
  status: number;
  /** Response body bytes written. */
  bytes: number;
  userAgent: string;
  /** The Host header, when distribution logged it (undefined for requests that never reached a /v2 route). */
  host: string | undefined;
};

export type RegistryOptions = {
  /** Require HTTP Basic auth (htpasswd, bcrypt). */
  auth?: { username: string; password: string };
  /** Serve an existing storage directory (e.g. another registry's `storageDir`); it is not removed by stop(). */
  storageDir?: string;
  /** Bind this port instead of a free one (e.g. to take over a halted registry's address). */
  port?: number;
};

export type Registry = DockerRegistry & {
  accessLogFile: string;
  /** "user:pass" when started with auth. */
  creds: string | undefined;
  /**
   * Every request the registry received so far (all runs, in completion order), excluding the readiness
   * probes and log barriers (User-Agent REGISTRY_PROBE_USER_AGENT). When the registry is running, first does
   * a round trip that guarantees earlier requests have been logged.
   */
  requests(): Promise<RegistryRequest[]>;
  /** Stop the process and remove the temp dir (an own storage dir lives inside it). Idempotent. */
  stop(): Promise<void>;
};

/** Path prefix of the requests used as a log barrier; they 404 in the router. */
const BARRIER_PREFIX = "/pullgate-test-log-barrier/";

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const dir = await makeTempDir("registry");
  try {
    const registry = await startDockerRegistry({ dir, ...opts, logLevel: "info", accessLog: true });
    const accessLogFile = registry.accessLogFile as string;
    return {
      ...registry,
      accessLogFile,
      creds: opts.auth ? `${opts.auth.username}:${opts.auth.password}` : undefined,
      requests: async () => {
        if (registry.isRunning()) await logBarrier(registry.url, accessLogFile);
        return parseRequests(await readText(accessLogFile), await readText(registry.logFile));
      },
      stop: async () => {
        await registry.stop();
        // A borrowed storage dir (opts.storageDir) is outside `dir` and left alone.
        await removeDir(dir);
      },
    };
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}

/**
 * The access log line is written after the response went out, so a client can see its response before the
 * line exists. Send a marker request and wait until its line shows up: by then the lines of requests
 * answered before it are (in practice) written too.
 */
async function logBarrier(url: string, accessLogFile: string): Promise<void> {
  const marker = `${BARRIER_PREFIX}${randomUUID()}`;
  try {
    const res = await fetch(`${url}${marker}`, {
      headers: { "user-agent": REGISTRY_PROBE_USER_AGENT },
      signal: AbortSignal.timeout(5_000),
    });
    await res.body?.cancel();
  } catch {
    return; // registry not answering: nothing more will be logged anyway
  }
  await waitFor(async () => (await readText(accessLogFile)).includes(marker), {
    timeoutMs: 5_000,
    intervalMs: 20,
    description: `registry access log line for ${marker}`,
  });
}

// `IP - USER [TIME] "METHOD URI PROTO" STATUS BYTES "REFERER" "USER-AGENT"`; quoted fields use Go-style escapes.
const ACCESS_LINE =
  /^(\S+) \S+ \S+ \[[^\]]*\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;

function unquote(s: string): string {
  try {
    return JSON.parse(`"${s}"`) as string;
  } catch {
    return s;
  }
}

type JsonRequest = { method: string; uri: string; host: string | undefined; status: number | undefined };

/** Exported for unit tests: turns the two registry logs into the list of requests. */
export function parseRequests(accessLog: string, jsonLog: string): RegistryRequest[] {
  // Group distribution's JSON lines by request id, in order of first appearance.
  const byId = new Map<string, JsonRequest>();
  for (const line of jsonLog.split("\n")) {
    if (!line.startsWith("{")) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const id = entry["http.request.id"];
    const method = entry["http.request.method"];
    const uri = entry["http.request.uri"];
    if (typeof id !== "string" || typeof method !== "string" || typeof uri !== "string") continue;
    let req = byId.get(id);
    if (!req) {
      const host = entry["http.request.host"];
      req = { method, uri, host: typeof host === "string" ? host : undefined, status: undefined };
      byId.set(id, req);
    }
    const status = entry["http.response.status"];
    if (typeof status === "number") req.status = status;
  }
  const unmatched = [...byId.values()];

  const requests: RegistryRequest[] = [];
  for (const line of accessLog.split("\n")) {
    const m = ACCESS_LINE.exec(line);
    if (!m) continue;
    const requestLine = unquote(m[2] ?? "");
    const firstSpace = requestLine.indexOf(" ");
    const lastSpace = requestLine.lastIndexOf(" ");
    if (firstSpace < 0 || lastSpace <= firstSpace) continue;
    const method = requestLine.slice(0, firstSpace);
    const path = requestLine.slice(firstSpace + 1, lastSpace);
    const status = Number(m[3]);
    const userAgent = unquote(m[6] ?? "");
    const idx = unmatched.findIndex(
      (r) => r.method === method && r.uri === path && (r.status === undefined || r.status === status),
    );
    const json = idx >= 0 ? unmatched.splice(idx, 1)[0] : undefined;
    if (userAgent === REGISTRY_PROBE_USER_AGENT) continue;
    requests.push({
      method,
      path,
      status,
      bytes: m[4] === "-" ? 0 : Number(m[4]),
      userAgent,
      host: json?.host,
    });
  }
  return requests;
}
