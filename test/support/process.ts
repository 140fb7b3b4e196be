import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killLiveProcesses } from "../../src/local/index.ts";

/**
 * The harness's last-resort cleanup, armed when this module is imported: if a test worker (or a bench run)
 * exits without stopping what it started (crash, timeout, ^C), SIGKILL the process groups src/local's
 * startProcess() started and did not stop (only our own group ids are signalled), and remove the temp dirs
 * made by makeTempDir() and not removed with removeDir(). The children run in their own process groups
 * (detached), so a ^C on the terminal does not reach them: on SIGINT/SIGTERM/SIGHUP we kill them, then
 * re-raise the signal if nobody else handles it (default action).
 *
 * The state is kept on globalThis so that every module instance (vitest re-imports modules per test file in
 * a worker) shares one set and one hook.
 */
type Tracked = { tempDirs: Set<string>; hookInstalled: boolean };
const TRACKED_KEY = Symbol.for("pullgate.test-support.process");
const tracked: Tracked = ((globalThis as Record<symbol, unknown>)[TRACKED_KEY] as Tracked | undefined) ?? {
  tempDirs: new Set(),
  hookInstalled: false,
};
(globalThis as Record<symbol, unknown>)[TRACKED_KEY] = tracked;
const liveTempDirs = tracked.tempDirs;

function cleanUpNow(): void {
  killLiveProcesses();
  for (const dir of liveTempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  liveTempDirs.clear();
}

function installExitHook(): void {
  if (tracked.hookInstalled) return;
  tracked.hookInstalled = true;
  process.once("exit", cleanUpNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      cleanUpNow();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

installExitHook();

/**
 * Creates a fresh `pullgate-<prefix>-XXXXXX` dir under os.tmpdir(). Dirs not removed with removeDir() are
 * removed when the process exits or is interrupted.
 */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `pullgate-${prefix}-`));
  liveTempDirs.add(dir);
  return dir;
}

/** Removes a dir recursively (retries on EBUSY etc.). */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  liveTempDirs.delete(dir);
}
