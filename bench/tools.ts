import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { childrenCpuTicks } from "./proc.ts";

/** Load generator runs still in flight; killed on SIGINT/SIGTERM (they run in their own process group). */
const active = new Set<ChildProcess>();

export function killActiveTools(): void {
  for (const child of active) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  active.clear();
}

export type ToolRun = {
  code: number | string;
  stdout: string;
  stderr: string;
  /** CPU (user+system) the tool used, in clock ticks. */
  cpuTicks: number;
};

const STAT_MARKER = "BENCH_CHILD_STAT ";
/**
 * Runs "$@" under sh and then prints the shell's own /proc stat line: its cutime+cstime are exactly the CPU
 * of the reaped tool (the `read` builtin starts no process).
 */
const WRAPPER = `"$@"; rc=$?; read -r s </proc/$$/stat; printf '${STAT_MARKER}%s\\n' "$s" >&2; exit $rc`;

/** Runs a load generator to completion, capturing its output and CPU time. Never throws on exit codes. */
export function runTool(command: string, args: string[], timeoutMs: number): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", WRAPPER, "sh", command, ...args], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    active.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      active.delete(child);
      reject(new Error(`cannot start ${command}: ${e.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      active.delete(child);
      let stderr = Buffer.concat(err).toString("utf8");
      let cpuTicks = 0;
      const at = stderr.lastIndexOf(STAT_MARKER);
      if (at >= 0) {
        cpuTicks = childrenCpuTicks(stderr.slice(at + STAT_MARKER.length).split("\n", 1)[0] ?? "");
        stderr = stderr.slice(0, at);
      }
      resolve({
        code: code ?? signal ?? "unknown",
        stdout: Buffer.concat(out).toString("utf8"),
        stderr,
        cpuTicks,
      });
    });
  });
}

function failure(command: string, run: ToolRun, why: string): Error {
  return new Error(`${command}: ${why} (exit ${run.code})\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
}

const WRK_SCRIPT = fileURLToPath(new URL("./wrk-report.lua", import.meta.url));

export type WrkOptions = {
  url: string;
  connections: number;
  durationS: number;
  headers?: string[];
};

export type WrkSummary = {
  duration_us: number;
  requests: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: {
    min: number;
    max: number;
    mean: number;
    stdev: number;
    p50: number;
    p90: number;
    p99: number;
    p999: number;
  };
};

export type LoadResult = {
  /** Completed requests. */
  requests: number;
  /** Response bytes read (headers included). */
  bytes: number;
  durationS: number;
  p50Ms: number;
  p99Ms: number;
  clientCpuTicks: number;
  raw: unknown;
};

/** `wrk -t1 -cN -dNs` with the JSON reporter; fails on any socket error or non-2xx/3xx response. */
export async function runWrk(opts: WrkOptions): Promise<LoadResult> {
  const args = [
    "-t1",
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    "--timeout",
    "10s",
    "-s",
    WRK_SCRIPT,
    ...(opts.headers ?? []).flatMap((h) => ["-H", h]),
    opts.url,
  ];
  const run = await runTool("wrk", args, (opts.durationS + 60) * 1000);
  const line = run.stdout.split("\n").find((l) => l.startsWith("WRK_JSON "));
  if (run.code !== 0 || !line) throw failure("wrk", run, "no report");
  const summary = JSON.parse(line.slice("WRK_JSON ".length)) as WrkSummary;
  const errors = Object.entries(summary.errors).filter(([, n]) => n > 0);
  if (errors.length > 0) {
    throw failure("wrk", run, `errors ${errors.map(([k, n]) => `${k}=${n}`).join(" ")} against ${opts.url}`);
  }
  if (summary.requests === 0) throw failure("wrk", run, `no request completed against ${opts.url}`);
  return {
    requests: summary.requests,
    bytes: summary.bytes,
    durationS: summary.duration_us / 1e6,
    p50Ms: summary.latency_us.p50 / 1000,
    p99Ms: summary.latency_us.p99 / 1000,
    clientCpuTicks: run.cpuTicks,
    raw: { args, summary },
  };
}
