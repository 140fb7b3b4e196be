import { readFile, writeFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { join } from "node:path";
import { type Daemon, startDaemon } from "./child-processes.ts";

type OnSpawn = (daemon: Daemon) => void;

/** A port on 127.0.0.1 that was free a moment ago (the kernel picks it; the listener is closed at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close((err) => (err || port === 0 ? reject(err ?? new Error("no port")) : resolve(port)));
    });
  });
}

async function logIncludes(file: string, text: string): Promise<boolean> {
  try {
    return (await readFile(file, "utf8")).includes(text);
  } catch {
    return false;
  }
}

export interface LocalServer {
  /** http://127.0.0.1:PORT or redis://127.0.0.1:PORT */
  url: string;
  daemon: Daemon;
}

/**
 * A throwaway docker-registry (CNCF distribution) on 127.0.0.1, storing in `dir`, logging to
 * `dir/registry.log` (no access log). Ready once it logged that it listens on our address (so another
 * server on that port cannot pass for it) and answers /v2/.
 */
export async function startRegistry(dir: string, onSpawn: OnSpawn): Promise<LocalServer> {
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const configFile = join(dir, "registry.yml");
  const logFile = join(dir, "registry.log");
  // YAML is a superset of JSON.
  const config = {
    version: 0.1,
    log: { level: "info", formatter: "json", accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(dir, "storage") }, delete: { enabled: false } },
    http: { addr, secret: "pullgate-demo" },
  };
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
  // distribution overrides config keys from REGISTRY_* variables: inherit none.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("REGISTRY_")));
  const url = `http://${addr}`;
  const daemon = await startDaemon({
    name: "docker-registry",
    command: "docker-registry",
    args: ["serve", configFile],
    cwd: dir,
    env,
    logFile,
    onSpawn,
    ready: async () => {
      if (!(await logIncludes(logFile, `listening on ${addr}`))) return false;
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return res.status === 200;
    },
  });
  return { url, daemon };
}

/** redis-server on 127.0.0.1 without persistence, working dir and log in `dir`. */
export async function startRedis(dir: string, onSpawn: OnSpawn): Promise<LocalServer> {
  const port = await freePort();
  const logFile = join(dir, "redis.log");
  const daemon = await startDaemon({
    name: "redis-server",
    command: "redis-server",
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--daemonize",
      "no",
      "--logfile",
      "",
      "--databases",
      "1",
    ],
    cwd: dir,
    logFile,
    onSpawn,
    ready: async () => (await logIncludes(logFile, "Ready to accept connections")) && (await ping(port)),
    readyTimeoutMs: 10_000,
  });
  return { url: `redis://127.0.0.1:${port}`, daemon };
}

/** Inline PING, expecting +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = "";
    const done = (ok: boolean): void => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("error", () => done(false));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.connect({ host: "127.0.0.1", port }, () => socket.write("PING\r\n"));
  });
}
