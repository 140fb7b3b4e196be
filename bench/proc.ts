import { readFile, writeFile } from "node:fs/promises";
import { runOk } from "../src/local/index.ts";

/** Clock ticks per second of the utime/stime fields in /proc (getconf CLK_TCK, 100 on Linux/x86). */
export async function clockTicks(): Promise<number> {
  try {
    const { stdout } = await runOk("getconf", ["CLK_TCK"]);
    const ticks = Number(stdout.trim());
    if (Number.isInteger(ticks) && ticks > 0) return ticks;
  } catch {
    // fall through
  }
  return 100;
}

/**
 * Fields of a /proc/<pid>/stat line after "pid (comm)", indexed so that fields[0] is field 3 (state).
 * comm may contain spaces and parentheses, so split after the LAST ")".
 */
export function statFields(line: string): string[] {
  const end = line.lastIndexOf(")");
  if (end < 0) throw new Error(`unexpected /proc stat line: ${line.slice(0, 80)}`);
  return line
    .slice(end + 1)
    .trim()
    .split(/\s+/);
}

/** utime+stime (all threads) of a process, in clock ticks. */
export async function processCpuTicks(pid: number): Promise<number> {
  const fields = statFields(await readFile(`/proc/${pid}/stat`, "utf8"));
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15
}

/** utime+stime of one thread of a process (the main thread's id is the pid), in clock ticks. */
export async function threadCpuTicks(pid: number, tid: number): Promise<number> {
  const fields = statFields(await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8"));
  return Number(fields[11]) + Number(fields[12]);
}

/** cutime+cstime (reaped children) from a /proc/<pid>/stat line, in clock ticks. */
export function childrenCpuTicks(statLine: string): number {
  const fields = statFields(statLine);
  return Number(fields[13]) + Number(fields[14]); // fields 16 and 17
}

/** Machine-wide CPU from the first line of /proc/stat, in clock ticks summed over all cores. */
export async function systemCpuTicks(): Promise<{ busy: number; total: number }> {
  const first = (await readFile("/proc/stat", "utf8")).split("\n", 1)[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal (guest and guest_nice are included in user/nice)
  const v = first.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes, from /proc/<pid>/status. */
export async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rss: kib("VmRSS") * 1024, hwm: kib("VmHWM") * 1024 };
}

/**
 * Resets a process's peak RSS (VmHWM) to its current RSS: `echo 5 > /proc/<pid>/clear_refs` (Linux 4.0+,
 * needs the right to write there: the process's owner or root). False when the kernel refused.
 */
export async function resetPeakRss(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Samples the RSS of `pids` (summed) every `intervalMs` until stopped; resolves the largest sum seen. */
export function sampleRss(pids: number[], intervalMs = 50): { stop(): Promise<number> } {
  let max = 0;
  let stopped = false;
  const tick = async () => {
    let sum = 0;
    for (const pid of pids) sum += (await memoryOf(pid).catch(() => ({ rss: 0 }))).rss;
    if (sum > max) max = sum;
  };
  const loop = (async () => {
    while (!stopped) {
      await tick();
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    await tick();
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return max;
    },
  };
}
