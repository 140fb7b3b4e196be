import type { Goal, ScenarioSummary, Stat } from "./report.ts";
import type { RoundTrips } from "./round-trips.ts";
import { DIRECT, NGINX, PULLGATE_ENFORCE } from "./scenario.ts";
import { DIRECT_LOOKUP, MIN_ROUND_TRIPS } from "./scenarios/cold.ts";
import {
  HERD_P99_RATIO_GOAL,
  KEYLESS_WARM_UNDER_HERD,
  WARM_DURING_HERD,
  WARM_IDLE,
} from "./scenarios/keyless-herd.ts";

const PG = PULLGATE_ENFORCE;

function stat(summaries: ScenarioSummary[], scenario: string, target: string, key: string): Stat | undefined {
  return summaries
    .find((s) => s.scenario === scenario)
    ?.rows.find((r) => r.target === target && r.metric.key === key)?.stat;
}

function ratioGoal(
  summaries: ScenarioSummary[],
  goal: string,
  scenario: string,
  key: string,
  versus: string,
  atLeast: number,
  unit: string,
  decimals: number,
): Goal {
  const a = stat(summaries, scenario, PG, key);
  const b = stat(summaries, scenario, versus, key);
  if (!a || !b || b.median === 0) return { goal, measured: "not measured", ratio: "–", met: undefined };
  const r = a.median / b.median;
  return {
    goal,
    measured: `${a.median.toFixed(decimals)} vs ${b.median.toFixed(decimals)} ${unit} (${versus})`,
    ratio: `${r.toFixed(2)}× ${versus}`,
    met: r >= atLeast,
  };
}

function addedGoal(
  summaries: ScenarioSummary[],
  goal: string,
  scenario: string,
  key: string,
  versus: string,
  atMostMs: number,
): Goal {
  const a = stat(summaries, scenario, PG, key);
  const b = stat(summaries, scenario, versus, key);
  if (!a || !b) return { goal, measured: "not measured", ratio: "–", met: undefined };
  const d = a.median - b.median;
  return {
    goal,
    measured: `${a.median.toFixed(2)} vs ${b.median.toFixed(2)} ms (${versus})`,
    ratio: `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(2)} ms`,
    met: d <= atMostMs,
  };
}

/** The issue's targets, from this run's figures. */
export function evaluateGoals(
  summaries: ScenarioSummary[],
  facts: Record<string, Record<string, unknown>>,
): Goal[] {
  const goals: Goal[] = [
    ratioGoal(
      summaries,
      "Warm pull throughput ≥ 1.0× direct (8 connections)",
      "warm-pull-c8",
      "pullsPerS",
      DIRECT,
      1,
      "pulls/s",
      0,
    ),
    ratioGoal(
      summaries,
      "Warm pull throughput ≥ nginx (8 connections)",
      "warm-pull-c8",
      "pullsPerS",
      NGINX,
      1,
      "pulls/s",
      0,
    ),
    addedGoal(
      summaries,
      "Warm pull adds ≤ 1 ms p50 over direct (per pull, 1 connection)",
      "warm-pull-c1",
      "p50Ms",
      DIRECT,
      1,
    ),
    addedGoal(
      summaries,
      "Warm pull adds ≤ 3 ms p99 over direct (per pull, 1 connection)",
      "warm-pull-c1",
      "p99Ms",
      DIRECT,
      3,
    ),
    ratioGoal(summaries, "Blob throughput ≥ 0.8× direct", "blob", "mibPerS", DIRECT, 0.8, "MiB/s", 0),
    ratioGoal(summaries, "Blob throughput ≥ nginx", "blob", "mibPerS", NGINX, 1, "MiB/s", 0),
  ];
  const rss = stat(summaries, "blob", PG, "peakRssMB");
  goals.push(
    rss
      ? {
          goal: "Blob: pullgate RSS < 150 MB while streaming",
          measured: `peak ${rss.max.toFixed(1)} MB (largest of the runs; median ${rss.median.toFixed(1)})`,
          ratio: `${(rss.max / 150).toFixed(2)}× the limit`,
          met: rss.max < 150,
        }
      : {
          goal: "Blob: pullgate RSS < 150 MB while streaming",
          measured: "not measured",
          ratio: "–",
          met: undefined,
        },
  );

  const rt = (facts["cold-pull"] as { roundTrips?: RoundTrips } | undefined)?.roundTrips;
  goals.push(
    rt
      ? {
          goal: `Cold pull: upstream requests ≤ the minimum (${MIN_ROUND_TRIPS} per pull)`,
          measured: `${rt.enforceTotal.toFixed(2)} per pull (direct: ${rt.directTotal.toFixed(2)})`,
          ratio: `${rt.enforceTotal - MIN_ROUND_TRIPS >= 0 ? "+" : "−"}${Math.abs(rt.enforceTotal - MIN_ROUND_TRIPS).toFixed(2)}`,
          met: rt.enforceTotal <= MIN_ROUND_TRIPS + 1e-9,
        }
      : {
          goal: `Cold pull: upstream requests ≤ the minimum (${MIN_ROUND_TRIPS})`,
          measured: "not measured",
          ratio: "–",
          met: undefined,
        },
    addedGoal(
      summaries,
      `Cold pull p50 ≤ direct + minimum round trips (${DIRECT_LOOKUP})`,
      "cold-pull",
      "p50Ms",
      DIRECT_LOOKUP,
      0,
    ),
  );

  const lookups = stat(summaries, "herd", PG, "lookups");
  const sig = stat(summaries, "herd", PG, "sigReads");
  if (lookups) {
    goals.push({
      goal: "Herd (500 concurrent first pulls): 1 signature lookup",
      measured:
        `${lookups.min === lookups.max ? lookups.max : `${lookups.min}–${lookups.max}`} per herd (/metrics)` +
        (sig ? `; \`.sig\` reads ${sig.min === sig.max ? sig.max : `${sig.min}–${sig.max}`}` : ""),
      ratio: `max ${lookups.max}`,
      met: lookups.max === 1 && lookups.min === 1,
    });
  } else if (sig) {
    goals.push({
      goal: "Herd (500 concurrent first pulls): 1 signature lookup",
      measured: `\`.sig\` reads upstream ${sig.min === sig.max ? sig.max : `${sig.min}–${sig.max}`} per herd (access log; no /metrics)`,
      ratio: `max ${sig.max}`,
      met: sig.max === 1 && sig.min === 1,
    });
  } else {
    goals.push({ goal: "Herd: 1 signature lookup", measured: "not measured", ratio: "–", met: undefined });
  }
  goals.push(keylessHerdGoal(summaries));
  return goals;
}

/** Warm pull p99 of one process while a herd of keyless first pulls runs through it, over its idle p99. */
function keylessHerdGoal(summaries: ScenarioSummary[]): Goal {
  const goal = `Warm pull p99 during a keyless herd ≤ ${HERD_P99_RATIO_GOAL}× the idle process's (same process)`;
  const busy = stat(summaries, KEYLESS_WARM_UNDER_HERD, WARM_DURING_HERD, "p99Ms");
  const idle = stat(summaries, KEYLESS_WARM_UNDER_HERD, WARM_IDLE, "p99Ms");
  if (!busy || !idle || idle.median === 0)
    return { goal, measured: "not measured", ratio: "–", met: undefined };
  const r = busy.median / idle.median;
  return {
    goal,
    measured: `${busy.median.toFixed(2)} vs ${idle.median.toFixed(2)} ms (idle)`,
    ratio: `${r.toFixed(2)}× idle`,
    met: r <= HERD_P99_RATIO_GOAL,
  };
}
