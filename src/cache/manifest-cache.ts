import { BoundedLru } from "./bounded-lru.ts";

/**
 * Manifest bytes by digest, in process. Manifests addressed by digest are immutable, so a repeat
 * GET or HEAD by digest can be answered without the upstream (which also spares registry rate
 * limits, which count manifest GETs). pull/ decides when serving from here cannot leak content:
 * entries are keyed by upstream and repository, and only requests without their own Authorization
 * read or write them. A BoundedLru: at most `maxBytes` of manifest bytes and `maxEntries` entries
 * (keys are a validated repository name and digest, a few hundred bytes at most, so the entry bound
 * bounds them), least recently used first out.
 */
export interface CachedManifest {
  bytes: Buffer;
  contentType: string;
}

export interface ManifestCache {
  get(upstream: string, repository: string, digest: string): CachedManifest | undefined;
  set(upstream: string, repository: string, digest: string, manifest: CachedManifest): void;
  readonly bytes: number;
  readonly entries: number;
}

export interface ManifestCacheOptions {
  /** Manifest bytes held (0 disables the cache). */
  maxBytes: number;
  /** Default 32 768. */
  maxEntries?: number;
}

export function createManifestCache(opts: ManifestCacheOptions): ManifestCache {
  const lru = new BoundedLru<CachedManifest>({
    maxEntries: opts.maxEntries ?? 32_768,
    maxBytes: opts.maxBytes,
    sizeOf: (m) => m.bytes.length,
  });
  const key = (u: string, r: string, d: string) => `${u}\u0000${r}\u0000${d}`;
  return {
    get(upstream, repository, digest) {
      return lru.get(key(upstream, repository, digest));
    },
    set(upstream, repository, digest, manifest) {
      // A few huge manifests must not evict everything.
      if (manifest.bytes.length > opts.maxBytes / 8) return;
      lru.set(key(upstream, repository, digest), manifest);
    },
    get bytes() {
      return lru.bytes;
    },
    get entries() {
      return lru.size;
    },
  };
}
