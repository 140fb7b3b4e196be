import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, openSync, rmSync } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Process groups started by startProcess() and temp dirs made by makeTempDir() that are still alive. Kept on
 * globalThis so that every module instance (vitest re-imports modules per test file in a worker) shares one
 * set and one exit hook.
 */
type Tracked = { groups: Set<number>; tempDirs: Set<string>; hookInstalled: boolean };
const TRACKED_KEY = Symbol.for("pullgate.test-support.process");
const tracked: Tracked = ((globalThis as Record<symbol, unknown>)[TRACKED_KEY] as Tracked | undefined) ?? {
  groups: new Set(),
  tempDirs: new Set(),
  hookInstalled: false,
};
(globalThis as Record<symbol, unknown>)[TRACKED_KEY] = tracked;
const liveGroups = tracked.groups;
const liveTempDirs = tracked.tempDirs;

function killAllGroups(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  liveGroups.clear();
  for (const dir of liveTempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  liveTempDirs.clear();
}

/**
 * Last-resort cleanup: if the test worker exits without calling stop() (crash, timeout, ^C), SIGKILL the
 * process groups we started so no registry/containerd outlives the run. Only our own group ids are signalled.
 * The children run in their own process groups (detached), so a ^C on the terminal does not reach them: on
 * SIGINT/SIGTERM/SIGHUP we kill them, then re-raise the signal if nobody else handles it (default action).
 */
function installExitHook(): void {
  if (tracked.hookInstalled) return;
  tracked.hookInstalled = true;
  process.once("exit", killAllGroups);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAllGroups();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

export type StartProcessOptions = {
  /** Short name used in error messages and as the default log file name. */
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  /** Full environment of the child; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Directory for the log file(s); must exist (usually the caller's temp dir). */
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
};

export type ManagedProcess = {
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
};

/** Returns the last `lines` lines of a file (reads at most the last 64 KiB). Never throws. */
export async function tailFile(path: string, lines = 40): Promise<string> {
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
 * Spawns a long-running child in its own process group (detached => setsid), stdout/stderr appended to log
 * files, and waits until `ready()` is true. If the child exits early or readiness times out, the group is
 * killed and the error message carries the tail of the log.
 */
export async function startProcess(opts: StartProcessOptions): Promise<ManagedProcess> {
  installExitHook();
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
  liveGroups.add(pid);

  const logTail = async (lines = 40): Promise<string> => {
    const out = await tailFile(stdoutFile, lines);
    if (stderrFile === stdoutFile) return out;
    return `--- ${stdoutFile}\n${out}\n--- ${stderrFile}\n${await tailFile(stderrFile, lines)}`;
  };

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5_000): Promise<void> => {
    stopping ??= (async () => {
      signalGroup(pid, "SIGTERM");
      const timer = sleep(graceMs).then(() => "timeout" as const);
      if ((await Promise.race([exited, timer])) === "timeout") {
        signalGroup(pid, "SIGKILL");
        await exited;
      }
      // Reap stragglers of the group (children of the leader that ignored SIGTERM).
      signalGroup(pid, "SIGKILL");
      liveGroups.delete(pid);
    })();
    return stopping;
  };

  const proc: ManagedProcess = {
    name: opts.name,
    pid,
    stdoutFile,
    stderrFile,
    exited,
    hasExited: () => exitedFlag,
    logTail,
    stop,
  };

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
      await stop();
      throw new Error(
        `${opts.name} (${opts.command}) exited early with ${code}; log tail:\n${await logTail()}`,
      );
    }
    if (Date.now() >= deadline) {
      await stop();
      throw new Error(`${opts.name} not ready after ${timeoutMs} ms; log tail:\n${await logTail()}`);
    }
    await sleep(intervalMs);
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left in the group
  }
}

/**
 * Creates a fresh `pullgate-<prefix>-XXXXXX` dir under os.tmpdir(). Dirs not removed with removeDir() are
 * removed when the process exits or is interrupted.
 */
export async function makeTempDir(prefix: string): Promise<string> {
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), `pullgate-${prefix}-`));
  liveTempDirs.add(dir);
  return dir;
}

/** Removes a dir recursively (retries on EBUSY etc.). */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  liveTempDirs.delete(dir);
}

export type RunResult = { code: number; stdout: string; stderr: string };

/**
 * Runs a short-lived command to completion and returns its exit code and output (never throws on a non-zero
 * exit; throws only if it cannot be started or times out).
 */
export function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
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
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  const result = await run(command, args, opts);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited with ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
  return result;
}
