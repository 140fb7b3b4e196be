import { readFile } from "node:fs/promises";
import { Socket } from "node:net";
import { join } from "node:path";
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
 */

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
}

export interface RedisServer extends RestartableProcess {
  /** "redis://127.0.0.1:PORT", or "redis://:PASSWORD@127.0.0.1:PORT" with a password. */
  url: string;
  port: number;
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
}): string[] {
  return [
    ...(opts.configFile === undefined ? [] : [opts.configFile]),
    "--port",
    String(opts.port),
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
        return ping(port);
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
  return {
    ...lifecycle,
    url:
      opts.password === undefined
        ? `redis://127.0.0.1:${port}`
        : `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`,
    port,
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

/** Sends an inline PING and expects +PONG, or -NOAUTH from a server that requires a password (RESP). */
function ping(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
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
    socket.connect({ host: "127.0.0.1", port }, () => socket.write("PING\r\n"));
  });
}
