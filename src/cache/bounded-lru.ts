/**
 * The one in-process LRU: every cache that remembers something per name a client can invent (a scope,
 * a repository, a digest) keeps it here, bounded by entries AND bytes, so no stream of invented names
 * can grow the process. Optional per-entry expiry on an injectable clock.
 *
 * get/set/delete are O(1) amortized: a Map keeps insertion order, a hit is re-inserted at the end and
 * eviction takes the first key. Expired entries are dropped when read; until then they count against
 * both bounds like any other entry, and are evicted in LRU order.
 */
export interface BoundedLruOptions<V> {
  /** Most entries held (≥ 0; 0 stores nothing). */
  maxEntries: number;
  /** Most bytes held, as `sizeOf` counts them (≥ 0; 0 stores nothing). */
  maxBytes: number;
  /**
   * Bytes an entry costs: its value and its key (`stringBytes(key)`) unless keys are bounded in
   * length and `maxEntries` bounds them. An entry costing more than `maxBytes` (or not a finite number
   * ≥ 0) is not stored.
   */
  sizeOf: (value: V, key: string) => number;
  /** Clock in ms since epoch, for `expiresAt` (tests inject one). Default Date.now. */
  now?: () => number;
  /**
   * Called once for every entry that leaves, whatever the reason: eviction, expiry, delete, replacement
   * by `set`, clear. It must not change the cache.
   */
  onRemove?: (key: string, value: V) => void;
}

interface Slot<V> {
  value: V;
  bytes: number;
  expiresAt: number;
}

/** What a JS string costs in memory, near enough (UTF-16). */
export function stringBytes(s: string): number {
  return s.length * 2;
}

export class BoundedLru<V> {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly #sizeOf: (value: V, key: string) => number;
  readonly #now: () => number;
  readonly #onRemove: ((key: string, value: V) => void) | undefined;
  readonly #map = new Map<string, Slot<V>>();
  #bytes = 0;

  constructor(opts: BoundedLruOptions<V>) {
    if (!Number.isInteger(opts.maxEntries) || opts.maxEntries < 0) {
      throw new RangeError(`maxEntries must be an integer ≥ 0, got ${opts.maxEntries}`);
    }
    if (!(opts.maxBytes >= 0)) throw new RangeError(`maxBytes must be ≥ 0, got ${opts.maxBytes}`);
    this.maxEntries = opts.maxEntries;
    this.maxBytes = opts.maxBytes;
    this.#sizeOf = opts.sizeOf;
    this.#now = opts.now ?? Date.now;
    this.#onRemove = opts.onRemove;
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#map.size;
  }

  /** Bytes held (as `sizeOf` counts them), expired entries not yet dropped included. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The value, when held and not expired; makes it the most recently used. An expired one is dropped. */
  get(key: string): V | undefined {
    const slot = this.#map.get(key);
    if (!slot) return undefined;
    if (slot.expiresAt <= this.#now()) {
      this.#remove(key, slot);
      return undefined;
    }
    this.#map.delete(key);
    this.#map.set(key, slot);
    return slot.value;
  }

  /**
   * Stores `value` as the most recently used entry, replacing any under `key`, then evicts the least
   * recently used entries until both bounds hold. Returns false when it was not stored: too big for
   * `maxBytes`, already expired, or the cache holds nothing (`maxEntries` 0). The old value under `key`
   * is gone either way.
   */
  set(key: string, value: V, expiresAt = Number.POSITIVE_INFINITY): boolean {
    const old = this.#map.get(key);
    if (old) this.#remove(key, old);
    // Whole bytes, so adding and subtracting never drifts.
    const bytes = Math.ceil(this.#sizeOf(value, key));
    if (
      !(Number.isFinite(bytes) && bytes >= 0 && bytes <= this.maxBytes) ||
      this.maxEntries === 0 ||
      !(expiresAt > this.#now())
    ) {
      return false;
    }
    this.#map.set(key, { value, bytes, expiresAt });
    this.#bytes += bytes;
    // The new entry is last and alone fits both bounds, so this stops before reaching it.
    while (this.#map.size > this.maxEntries || this.#bytes > this.maxBytes) {
      const oldest = this.#map.entries().next();
      if (oldest.done) break;
      this.#remove(oldest.value[0], oldest.value[1]);
    }
    return true;
  }

  /** Drops the entry under `key`. True when a live one was dropped (an expired entry was gone already). */
  delete(key: string): boolean {
    const slot = this.#map.get(key);
    if (!slot) return false;
    this.#remove(key, slot);
    return slot.expiresAt > this.#now();
  }

  clear(): void {
    const slots = this.#onRemove ? [...this.#map] : [];
    this.#map.clear();
    this.#bytes = 0;
    for (const [key, slot] of slots) this.#onRemove?.(key, slot.value);
  }

  #remove(key: string, slot: Slot<V>): void {
    this.#map.delete(key);
    this.#bytes -= slot.bytes;
    this.#onRemove?.(key, slot.value);
  }
}
