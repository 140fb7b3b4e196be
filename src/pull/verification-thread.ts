import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";

/**
 * The nice value of a verification thread: when CPU is short, the event loop (warm pulls, blob
 * streams) and the rest of the node come first, and cold keyless verifications wait.
 */
export const VERIFICATION_THREAD_NICE = 10;

/**
 * Renices the calling thread to VERIFICATION_THREAD_NICE (a worker calls it once, when it starts).
 * Linux: setpriority(2) on a thread id renices that thread alone; /proc/thread-self names it.
 */
export function lowerThisThreadsPriority(): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, VERIFICATION_THREAD_NICE);
  } catch {
    // Not Linux (no /proc/thread-self): the thread keeps the process's priority.
  }
}
