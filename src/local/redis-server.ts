import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Socket } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import {
  fileSize,
  type ManagedProcess,
  type RestartableProcess,
  startProcess,
  startRestartable,
} from "./child-process.ts";
import { freePort } from "./ports.ts";

/**
 * Debian's `redis-server` (7.0 on Debian 12) on 127.0.0.1, working dir and log in a directory of the
 * caller's, one database, no RDB snapshots. Without `appendOnly` nothing persists: a restarted server is
 * empty, like a fresh Redis; with it (AOF, fsync every second) a restart on the same dir keeps the data.
 * With `tls` the server speaks TLS only (`--port 0`, `--tls-port`): plain text gets no answer.
 */

/** PEM files of a TLS-only server (and of the TLS its replication, cluster bus and sentinels use). */
export interface RedisServerTls {
  certPath: string;
  keyPath: string;
  /**
   * The CA that signed `certPath`: what the server trusts when it connects to others (its master, other cluster
   * nodes, a sentinel's servers) and what the readiness check verifies it with.
   */
  caCertPath: string;
}

export interface RedisServerOptions {
  /** Working dir (AOF files) and `redis.log`; must exist. */
  dir: string;
  /** Default: a free one. */
  port?: number;
  /** Require this password (requirepass) for the default user; `url` then carries it. */
  password?: string;
  /** Keep the data across halt()/restart() in an append-only file (default false: nothing persists). */
  appendOnly?: boolean;
  readyTimeoutMs?: number;
  /** Told about every redis-server process as soon as it exists (restarts included). */
  onSpawn?: (proc: ManagedProcess) => void;
  /**
   * A config file given first on the command line (a Sentinel needs one it can rewrite); the options below
   * still apply after it.
   */
  configFile?: string;
  /** More command-line options, last (e.g. `--cluster-enabled yes`, `--sentinel`). */
  extraArgs?: readonly string[];
  /**
   * TLS only, on `port`: `--port 0 --tls-port PORT`, no client certificates asked for (`--tls-auth-clients no`),
   * and TLS for replication and the cluster bus as well; `url` is then "rediss://…".
   */
  tls?: RedisServerTls;
}

export interface RedisServer extends RestartableProcess {
  /** "redis://127.0.0.1:PORT", or "redis://:PASSWORD@127.0.0.1:PORT" with a password ("rediss://" with TLS). */
  url: string;
  port: number;
  /** Set when the server speaks TLS only. */
  tls: RedisServerTls | undefined;
  dir: string;
  logFile: string;
  /**
   * SIGSTOP the server: connections stay open and the kernel still accepts new ones, but nothing answers (a hung
   * or black-holed Redis). resume() sends SIGCONT. halt() and stop() resume it first.
   */
  pause(): void;
  resume(): void;
}

function redisServerArgs(opts: {
  port: number;
  dir: string;
  password?: string;
  appendOnly?: boolean;
  configFile?: string;
  extraArgs?: readonly string[];
  tls?: RedisServerTls;
}): string[] {
  const { tls } = opts;
  return [
    ...(opts.configFile === undefined ? [] : [opts.configFile]),
    ...(tls === undefined
      ? ["--port", String(opts.port)]
      : [
          "--port",
          "0",
          "--tls-port",
          String(opts.port),
          "--tls-cert-file",
          tls.certPath,
          "--tls-key-file",
          tls.keyPath,
          "--tls-ca-cert-file",
          tls.caCertPath,
          "--tls-auth-clients",
          "no",
          "--tls-replication",
          "yes",
          "--tls-cluster",
          "yes",
        ]),
    "--bind",
    "127.0.0.1",
    "--protected-mode",
    "yes",
    "--save",
    "",
    ...(opts.appendOnly ? ["--appendonly", "yes", "--appendfsync", "everysec"] : ["--appendonly", "no"]),
    "--dir",
    opts.dir,
    "--daemonize",
    "no",
    "--logfile",
    "",
    "--databases",
    "1",
    ...(opts.password === undefined ? [] : ["--requirepass", opts.password]),
    ...(opts.extraArgs ?? []),
  ];
}

export async function startRedisServer(opts: RedisServerOptions): Promise<RedisServer> {
  const { dir } = opts;
  const port = opts.port ?? (await freePort());
  const logFile = join(dir, "redis.log");
  const args = redisServerArgs({ ...opts, port });
  // A Sentinel never says "Ready to accept connections".
  const readyLine = opts.extraArgs?.includes("--sentinel")
    ? "Running mode=sentinel"
    : "Ready to accept connections";

  const launch = async (): Promise<ManagedProcess> => {
    // The log is appended to across restart(): only look at what this run writes.
    const logOffset = await fileSize(logFile);
    return startProcess({
      name: "redis-server",
      command: "redis-server",
      args,
      cwd: dir,
      logDir: dir,
      stdoutFile: logFile,
      ready: async () => {
        // Make sure OUR process bound the port (a bind failure exits instead), so another server answering on
        // that port cannot make an unbound redis-server look ready.
        const ownLog = (await readFile(logFile)).subarray(logOffset).toString("utf8");
        if (!ownLog.includes(readyLine)) return false;
        return ping(port, opts.tls);
      },
      readyTimeoutMs: opts.readyTimeoutMs ?? 10_000,
      pollIntervalMs: 20,
      onSpawn: opts.onSpawn,
    });
  };
  const lifecycle = await startRestartable("redis-server", launch);
  let paused = false;
  const resume = (): void => {
    const proc = lifecycle.currentProcess();
    if (!proc || !paused) return;
    process.kill(proc.pid, "SIGCONT");
    paused = false;
  };
  const scheme = opts.tls === undefined ? "redis" : "rediss";
  return {
    ...lifecycle,
    url:
      opts.password === undefined
        ? `${scheme}://127.0.0.1:${port}`
        : `${scheme}://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`,
    port,
    tls: opts.tls,
    dir,
    logFile,
    pause: () => {
      const proc = lifecycle.currentProcess();
      if (!proc || paused) return;
      process.kill(proc.pid, "SIGSTOP");
      paused = true;
    },
    resume,
    // A stopped (SIGSTOP) process would not see the SIGTERM.
    halt: async () => {
      resume();
      await lifecycle.halt();
    },
    stop: async () => {
      resume();
      await lifecycle.stop();
    },
  };
}

/**
 * Sends an inline PING and expects +PONG, or -NOAUTH from a server that requires a password (RESP). Over TLS
 * (chain checked against the server's CA, not its name: this only asks whether it answers) for a TLS server.
 */
function ping(port: number, tls?: RedisServerTls, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket =
      tls === undefined
        ? new Socket()
        : tlsConnect({
            host: "127.0.0.1",
            port,
            ca: readFileSync(tls.caCertPath),
            checkServerIdentity: () => undefined,
          });
    let reply = "";
    const done = (ok: boolean): void => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("error", () => done(false));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH"));
    });
    if (tls === undefined) socket.connect({ host: "127.0.0.1", port }, () => socket.write("PING\r\n"));
    else socket.once("secureConnect", () => socket.write("PING\r\n"));
  });
}
