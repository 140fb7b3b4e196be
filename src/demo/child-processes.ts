import { type ChildProcess, execFile, spawn } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The programs the demo runs: long-lived servers (docker-registry, redis-server) in their own process
 * groups, so a Ctrl-C on the terminal reaches only the demo, which then stops them in order; and
 * short commands (skopeo, apt) run to completion with their output captured.
 */

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  hasExited(): boolean;
  /** SIGTERM the group, SIGKILL after `graceMs`, wait for the exit. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL the group now (synchronous; for the process "exit" hook). */
  kill(): void;
}

/** The full path of `command` on PATH, or undefined. */
export function findOnPath(command: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone
  }
}

/**
 * Starts `command` detached (own process group) with stdout and stderr appended to `logFile`, and
 * polls `ready()` until it is true. An early exit or a timeout stops it and throws with the log's tail.
 */
export async function startDaemon(opts: {
  name: string;
  command: string;
  args: readonly string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Called as soon as the process exists (before it is ready), so the caller can stop it on Ctrl-C. */
  onSpawn?: (daemon: Daemon) => void;
}): Promise<Daemon> {
  const fd = openSync(opts.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ["ignore", fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  let exitedFlag = false;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exitedFlag = true;
      resolve();
    });
  });
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${opts.command}: ${(await spawnError).message}`);

  let stopping: Promise<void> | undefined;
  const daemon: Daemon = {
    name: opts.name,
    pid,
    hasExited: () => exitedFlag,
    kill: () => signalGroup(pid, "SIGKILL"),
    stop: (graceMs = 5_000) => {
      stopping ??= (async () => {
        signalGroup(pid, "SIGTERM");
        const timer = new AbortController();
        const timedOut = await Promise.race([
          exited.then(() => false),
          sleep(graceMs, true, { signal: timer.signal }).catch(() => false),
        ]);
        timer.abort(); // a pending timer would keep the process alive
        if (timedOut) {
          signalGroup(pid, "SIGKILL");
          await exited;
        }
        signalGroup(pid, "SIGKILL"); // anything the leader left behind in its group
      })();
      return stopping;
    },
  };

  opts.onSpawn?.(daemon);

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  for (;;) {
    const ok = await Promise.race([opts.ready().catch(() => false), exited.then(() => false)]);
    if (ok && !exitedFlag) return daemon;
    if (exitedFlag || Date.now() >= deadline) {
      await daemon.stop(1_000);
      const why = exitedFlag ? "exited while starting" : "did not become ready";
      throw new Error(`${opts.name} ${why}; last lines of its log:\n${tailOf(opts.logFile, 10)}`);
    }
    await sleep(50);
  }
}

function tailOf(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (never throws on a non-zero exit; only when it cannot start or times out). */
export function runCommand(
  command: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        env: opts.env ?? process.env,
        timeout: opts.timeoutMs ?? 60_000,
        killSignal: "SIGKILL",
        maxBuffer: 16 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== "number") {
          reject(new Error(`${command} ${err.killed ? "timed out" : `failed: ${err.message}`}`));
          return;
        }
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}
