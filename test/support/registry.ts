import { randomUUID } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { type ManagedProcess, makeTempDir, removeDir, runOk, startProcess, waitFor } from "./process.ts";

/**
 * A real upstream registry for integration tests: Debian's `docker-registry` (CNCF distribution 2.8.2).
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

export type Registry = {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  port: number;
  /** Filesystem storage root (rootdirectory). */
  storageDir: string;
  /** Temp dir with config.yml, htpasswd and logs. */
  dir: string;
  accessLogFile: string;
  logFile: string;
  /** "user:pass" when started with auth. */
  creds: string | undefined;
  /**
   * Every request the registry received so far (all runs, in completion order), excluding the harness's own
   * readiness probes and log barriers (User-Agent HARNESS_USER_AGENT). When the registry is running, first does a round trip that guarantees earlier
   * requests have been logged.
   */
  requests(): Promise<RegistryRequest[]>;
  /** Stop the process (the port is free afterwards) but keep storage and logs; restart() brings it back. */
  halt(): Promise<void>;
  /** Start again on the same port with the same config and storage. */
  restart(): Promise<void>;
  isRunning(): boolean;
  /** Stop the process and remove the temp dirs. Idempotent. */
  stop(): Promise<void>;
};

/** Path prefix of the requests used as a log barrier; they 404 in the router. */
const BARRIER_PREFIX = "/pullgate-test-log-barrier/";
/** User-Agent of the harness's own readiness probes and barrier requests; requests() leaves them out. */
export const HARNESS_USER_AGENT = "pullgate-test-harness";

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const dir = await makeTempDir("registry");
  let proc: ManagedProcess | undefined;
  try {
    const storageDir = opts.storageDir ?? join(dir, "storage");
    await mkdir(storageDir, { recursive: true });
    const port = opts.port ?? (await freePort());
    const host = `127.0.0.1:${port}`;
    const url = `http://${host}`;

    // YAML is a superset of JSON, so the config is written as JSON.
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: "info", formatter: "json", accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        delete: { enabled: false },
        maintenance: { uploadpurging: { enabled: false } },
      },
      // A fixed secret silences the "No HTTP secret provided" warning.
      http: { addr: host, secret: "pullgate-integration-tests" },
    };
    if (opts.auth) {
      const { stdout } = await runOk("htpasswd", ["-Bbn", opts.auth.username, opts.auth.password]);
      const htpasswdFile = join(dir, "htpasswd");
      await writeFile(htpasswdFile, `${stdout.trim()}\n`);
      config.auth = { htpasswd: { realm: "pullgate-test-registry", path: htpasswdFile } };
    }
    const configFile = join(dir, "config.yml");
    await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);

    const accessLogFile = join(dir, "access.log");
    const logFile = join(dir, "registry.log");
    // distribution overrides config keys from REGISTRY_* variables: do not inherit any.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("REGISTRY_")));

    const launch = async (): Promise<ManagedProcess> => {
      // The logs are appended to across restart(): only look at what this run writes.
      const logOffset = await fileSize(logFile);
      return startProcess({
        name: "docker-registry",
        command: "docker-registry",
        args: ["serve", configFile],
        env,
        logDir: dir,
        stdoutFile: accessLogFile,
        stderrFile: logFile,
        ready: async () => {
          // First make sure OUR process bound the port (a fatal "address already in use" exits instead), so a
          // different server answering on that port cannot make an unbound registry look ready.
          const ownLog = (await readFile(logFile)).subarray(logOffset).toString("utf8");
          if (!ownLog.includes(`"msg":"listening on ${host}"`)) return false;
          const res = await fetch(`${url}/v2/`, {
            headers: { "user-agent": HARNESS_USER_AGENT },
            signal: AbortSignal.timeout(2_000),
          });
          await res.body?.cancel();
          return res.status === (opts.auth ? 401 : 200);
        },
        readyTimeoutMs: 20_000,
      });
    };
    proc = await launch();

    let stopped = false;
    const registry: Registry = {
      host,
      url,
      port,
      storageDir,
      dir,
      accessLogFile,
      logFile,
      creds: opts.auth ? `${opts.auth.username}:${opts.auth.password}` : undefined,
      isRunning: () => proc !== undefined && !proc.hasExited(),
      requests: async () => {
        if (registry.isRunning()) await logBarrier(url, accessLogFile);
        return parseRequests(await readText(accessLogFile), await readText(logFile));
      },
      halt: async () => {
        await proc?.stop();
        proc = undefined;
      },
      restart: async () => {
        if (stopped) throw new Error("registry was stopped");
        if (registry.isRunning()) throw new Error("registry is running; halt() it first");
        proc = await launch();
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await registry.halt();
        // An own storage dir lives inside `dir`; a borrowed one (opts.storageDir) is left alone.
        await removeDir(dir);
      },
    };
    return registry;
  } catch (err) {
    await proc?.stop();
    await removeDir(dir);
    throw err;
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
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
      headers: { "user-agent": HARNESS_USER_AGENT },
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
    if (userAgent === HARNESS_USER_AGENT) continue;
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
