import { readFile, stat } from "node:fs/promises";
import { Socket } from "node:net";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { type ManagedProcess, makeTempDir, removeDir, startProcess } from "./process.ts";

/**
 * A real Redis for tests: Debian's `redis-server` (7.0 on Debian 12; scripts/install-test-deps.sh installs it)
 * on a free 127.0.0.1 port, without persistence (`--save "" --appendonly no`), working dir and log in its own
 * temp dir. Data does not survive halt()/restart(): a restarted server is empty, like a fresh Redis.
 */
export type RedisServerOptions = {
  /** Require this password (requirepass) for the default user; `url` then carries it. */
  password?: string;
};

export type RedisServer = {
  /** "redis://127.0.0.1:PORT", or "redis://:PASSWORD@127.0.0.1:PORT" with a password. */
  url: string;
  port: number;
  /** Temp dir (working dir and redis.log). */
  dir: string;
  logFile: string;
  /** Stop the process (the port is free afterwards) but keep the port and the dir; restart() brings it back. */
  halt(): Promise<void>;
  /** Start again on the same port (with an empty dataset). */
  restart(): Promise<void>;
  /**
   * SIGSTOP the server: connections stay open and the kernel still accepts new ones, but nothing answers (a hung
   * or black-holed Redis). resume() sends SIGCONT. Always resume() a paused server before halt()/stop().
   */
  pause(): void;
  resume(): void;
  isRunning(): boolean;
  /** Stop the process and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
};

export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await makeTempDir("redis");
  let proc: ManagedProcess | undefined;
  try {
    const port = await freePort();
    const logFile = join(dir, "redis.log");
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--protected-mode",
      "yes",
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
      ...(opts.password === undefined ? [] : ["--requirepass", opts.password]),
    ];

    const launch = async (): Promise<ManagedProcess> => {
      // The log is appended to across restart(): only look at what this run writes.
      const logOffset = await fileSize(logFile);
      return startProcess({
        name: "redis-server",
        command: "redis-server",
        args,
        logDir: dir,
        stdoutFile: logFile,
        ready: async () => {
          // Make sure OUR process bound the port (a bind failure exits instead), so another server answering on
          // that port cannot make an unbound redis-server look ready.
          const ownLog = (await readFile(logFile)).subarray(logOffset).toString("utf8");
          if (!ownLog.includes("Ready to accept connections")) return false;
          return ping(port);
        },
        readyTimeoutMs: 10_000,
        pollIntervalMs: 20,
      });
    };
    proc = await launch();

    let stopped = false;
    let paused = false;
    const server: RedisServer = {
      url:
        opts.password === undefined
          ? `redis://127.0.0.1:${port}`
          : `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`,
      port,
      dir,
      logFile,
      isRunning: () => proc !== undefined && !proc.hasExited(),
      pause: () => {
        if (!proc || paused) return;
        process.kill(proc.pid, "SIGSTOP");
        paused = true;
      },
      resume: () => {
        if (!proc || !paused) return;
        process.kill(proc.pid, "SIGCONT");
        paused = false;
      },
      halt: async () => {
        server.resume();
        await proc?.stop();
        proc = undefined;
      },
      restart: async () => {
        if (stopped) throw new Error("redis-server was stopped");
        if (server.isRunning()) throw new Error("redis-server is running; halt() it first");
        proc = await launch();
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await server.halt();
        await removeDir(dir);
      },
    };
    return server;
  } catch (err) {
    await proc?.stop();
    await removeDir(dir);
    throw err;
  }
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

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}
