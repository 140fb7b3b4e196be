import type { AuditOutcome, AuditSink, ManifestDecisionRecord } from "./audit-log.ts";

/** Every audit outcome (the compiler asks for a new one here), as the decisions endpoint accepts them. */
const OUTCOMES: Record<AuditOutcome, true> = {
  allow: true,
  deny: true,
  "would-deny": true,
  exempt: true,
  off: true,
};
export const AUDIT_OUTCOMES = Object.keys(OUTCOMES) as readonly AuditOutcome[];

export function isAuditOutcome(value: string): value is AuditOutcome {
  return Object.hasOwn(OUTCOMES, value);
}

/** One remembered decision: the audit record, when it was made, and its place in the sequence. */
export type RecentDecision = ManifestDecisionRecord & {
  /** 1 for the first decision this process made, then one more for each. */
  seq: number;
  /** ISO 8601 time the decision was recorded. */
  at: string;
};

export interface RecentDecisionsFilter {
  project?: string | undefined;
  outcome?: AuditOutcome | undefined;
  repository?: string | undefined;
  /** At most this many, newest first (default: all that match). */
  limit?: number | undefined;
}

/** The most a string field of a remembered decision keeps (a deny's detail can be long). */
const MAX_FIELD_CHARS = 2_048;

/**
 * The latest manifest decisions of this process, in memory: a ring of `capacity` records (the oldest
 * is dropped), fed as an audit sink, read by the admin console (GET /admin/v1/decisions). Each record
 * is copied with its strings capped, so the ring's size is bounded whatever the decisions say.
 */
export class RecentDecisions implements AuditSink {
  readonly capacity: number;
  readonly #ring: (RecentDecision | undefined)[];
  #next = 0;
  #seq = 0;
  readonly #now: () => number;

  constructor(opts: { capacity?: number; now?: () => number } = {}) {
    const capacity = opts.capacity ?? 1_000;
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError("capacity must be a positive integer");
    this.capacity = capacity;
    this.#ring = new Array(capacity).fill(undefined);
    this.#now = opts.now ?? Date.now;
  }

  /** The audit sink: remembers the record (never throws, O(1)). */
  decision(record: ManifestDecisionRecord): void {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) {
      if (v === undefined) continue;
      copy[k] = typeof v === "string" && v.length > MAX_FIELD_CHARS ? `${v.slice(0, MAX_FIELD_CHARS)}…` : v;
    }
    this.#seq += 1;
    const entry = { ...copy, seq: this.#seq, at: new Date(this.#now()).toISOString() } as RecentDecision;
    this.#ring[this.#next] = Object.freeze(entry);
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** How many decisions are remembered (at most `capacity`). */
  get size(): number {
    return Math.min(this.#seq, this.capacity);
  }

  /** The remembered decisions that match every given filter (exact values), newest first. */
  list(filter: RecentDecisionsFilter = {}): RecentDecision[] {
    const limit = filter.limit ?? this.capacity;
    const out: RecentDecision[] = [];
    for (let i = 1; i <= this.capacity && out.length < limit; i++) {
      const entry = this.#ring[(this.#next - i + this.capacity) % this.capacity];
      if (entry === undefined) break;
      if (filter.project !== undefined && entry.project !== filter.project) continue;
      if (filter.outcome !== undefined && entry.outcome !== filter.outcome) continue;
      if (filter.repository !== undefined && entry.repository !== filter.repository) continue;
      out.push(entry);
    }
    return out;
  }
}
