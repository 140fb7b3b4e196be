import { type ChildProcess, execFile, spawn } from "node:child_process";
import { accessSync, closeSync, constants, openSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The programs pullgate's neighbours are made of: long-lived servers (docker-registry, redis-server, …)
 * started in their own process groups, with their output in log files, polled until ready and stopped
 * group and all; and short commands (skopeo, htpasswd, apt) run to completion with their output captured.
 */

export interface StartProcessOptions {
  /** Short name used in error messages and as the default log file name. */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  /** Full environment of the child; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Directory for the log file(s); must exist. */
  logDir: string;
  /**
   * Where stdout and stderr go. Default: both appended to `<logDir>/<name>.log`. Files are opened in append
   * mode, so a restarted process keeps adding to the same file.
   */
  stdoutFile?: string;
  stderrFile?: string;
  /** Polled until it resolves true. Exceptions count as "not ready yet". */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  pollIntervalMs?: number;
  /** Called as soon as the process exists (before it is ready), so the caller can stop it on Ctrl-C. */
  onSpawn?: (proc: ManagedProcess) => void;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** File(s) the child writes to. stdoutFile === stderrFile unless separate files were requested. */
  readonly stdoutFile: string;
  readonly stderrFile: string;
  /** Resolves with the exit code (or the signal name) once the child has exited. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
  /** The last `lines` lines of the log file(s). */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM the process group, SIGKILL it after `graceMs` (default 5 s), wait for the exit. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL the group now (synchronous, for an "exit" hook); does nothing once stop() has finished. */
  kill(): void;
}

/**
 * Every process startProcess() started whose stop() has not finished yet. Kept on globalThis so that
 * every copy of this module (vitest imports modules once per test file in a worker) shares one set.
 */
const LIVE_KEY = Symbol.for("pullgate.local.live-processes");
const globals = globalThis as Record<symbol, unknown>;
const liveProcesses = (globals[LIVE_KEY] as Set<ManagedProcess> | undefined) ?? new Set<ManagedProcess>();
globals[LIVE_KEY] = liveProcesses;

/**
 * SIGKILLs the process group of every process startProcess() started and did not stop (synchronous: the
 * last resort of an "exit" or signal hook, so that no server outlives the program that started it).
 */
export function killLiveProcesses(): void {
  for (const proc of liveProcesses) proc.kill();
  liveProcesses.clear();
}

/** Returns the last `lines` lines of a file (reads at most the last 64 KiB). Never throws. */
async function tailFile(path: string, lines = 40): Promise<string> {
  try {
    const fh = await open(path, "r");
    try {
      const { size } = await fh.stat();
      const length = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(length);
      await fh.read(buf, 0, length, size - length);
      return buf
        .toString("utf8")
        .split("\n")
        .slice(-lines - 1)
        .join("\n")
        .trimEnd();
    } finally {
      await fh.close();
    }
  } catch (err) {
    return `<cannot read ${path}: ${(err as Error).message}>`;
  }
}

/** The size of `file` in bytes, 0 when it does not exist (where a restarted server's own log lines begin). */
export async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** Polls `fn` until it returns true; throws after `timeoutMs`. Exceptions from `fn` count as false. */
export async function waitFor(
  fn: () => Promise<boolean> | boolean,
  opts: { timeoutMs?: number; intervalMs?: number; description?: string } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.description ?? "condition"}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Spawns a long-running child in its own process group (detached => setsid: a Ctrl-C on the terminal
 * reaches only its parent, which then stops it), stdout/stderr appended to log files, and waits until
 * `ready()` is true. If the child exits early or readiness times out, the group is killed and the error
 * message carries the tail of the log.
 */
export async function startProcess(opts: StartProcessOptions): Promise<ManagedProcess> {
  const stdoutFile = opts.stdoutFile ?? join(opts.logDir, `${opts.name}.log`);
  const stderrFile = opts.stderrFile ?? stdoutFile;
  const outFd = openSync(stdoutFile, "a");
  const errFd = stderrFile === stdoutFile ? outFd : openSync(stderrFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ["ignore", outFd, errFd],
    });
  } finally {
    closeSync(outFd);
    if (errFd !== outFd) closeSync(errFd);
  }
  let exitedFlag = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      exitedFlag = true;
      resolve(code ?? signal ?? "unknown");
    });
  });
  // spawn() reports ENOENT etc. asynchronously through "error" (and then no "exit").
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const pid = child.pid;
  if (pid === undefined) {
    const err = await spawnError;
    throw new Error(`${opts.name}: cannot start ${opts.command}: ${err.message}`);
  }

  const logTail = async (lines = 40): Promise<string> => {
    const out = await tailFile(stdoutFile, lines);
    if (stderrFile === stdoutFile) return out;
    return `--- ${stdoutFile}\n${out}\n--- ${stderrFile}\n${await tailFile(stderrFile, lines)}`;
  };

  let stopping: Promise<void> | undefined;
  let stopped = false;
  const proc: ManagedProcess = {
    name: opts.name,
    pid,
    stdoutFile,
    stderrFile,
    exited,
    hasExited: () => exitedFlag,
    logTail,
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
        // Reap stragglers of the group (children of the leader that ignored SIGTERM).
        signalGroup(pid, "SIGKILL");
        stopped = true;
        liveProcesses.delete(proc);
      })();
      return stopping;
    },
    // Once stopped, the group id may belong to someone else: leave it alone.
    kill: () => {
      if (!stopped) signalGroup(pid, "SIGKILL");
    },
  };
  liveProcesses.add(proc);
  opts.onSpawn?.(proc);

  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const intervalMs = opts.pollIntervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await Promise.race([
      opts.ready().catch(() => false),
      exited.then(() => false),
      spawnError.then(() => false),
    ]);
    if (ok && !exitedFlag) return proc;
    if (exitedFlag) {
      const code = await exited;
      await proc.stop();
      throw new Error(
        `${opts.name} (${opts.command}) exited early with ${code}; log tail:\n${await logTail()}`,
      );
    }
    if (Date.now() >= deadline) {
      await proc.stop();
      throw new Error(`${opts.name} not ready after ${timeoutMs} ms; log tail:\n${await logTail()}`);
    }
    await sleep(intervalMs);
  }
}

/** A server that can be halted and started again with the same port, config and files. */
export interface RestartableProcess {
  /** The running process (undefined while halted). */
  currentProcess(): ManagedProcess | undefined;
  isRunning(): boolean;
  /** Stop the process (its port is free afterwards) but keep everything else; restart() brings it back. */
  halt(): Promise<void>;
  /** Start it again (halt() it first). */
  restart(): Promise<void>;
  /** Stop the process for good. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a server with `launch` (and again with it on restart()). */
export async function startRestartable(
  name: string,
  launch: () => Promise<ManagedProcess>,
): Promise<RestartableProcess> {
  let proc: ManagedProcess | undefined = await launch();
  let stopped = false;
  const server: RestartableProcess = {
    currentProcess: () => proc,
    isRunning: () => proc !== undefined && !proc.hasExited(),
    halt: async () => {
      await proc?.stop();
      proc = undefined;
    },
    restart: async () => {
      if (stopped) throw new Error(`${name} was stopped`);
      if (server.isRunning()) throw new Error(`${name} is running; halt() it first`);
      proc = await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.halt();
    },
  };
  return server;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left in the group
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  cwd?: string;
}

/**
 * Runs a short-lived command to completion and returns its exit code and output (never throws on a non-zero
 * exit; throws only if it cannot be started or times out).
 */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 60_000,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== "number") {
          if (err.killed) {
            reject(new Error(`${command} ${args.join(" ")} timed out\n${stderr}`));
          } else {
            reject(new Error(`${command} ${args.join(" ")}: ${err.message}\n${stderr}`));
          }
          return;
        }
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/** Like run(), but throws with the output when the exit code is not 0. */
export async function runOk(
  command: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const result = await run(command, args, opts);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited with ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
  return result;
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
