/**
 * Manifest bytes by digest, in process. Manifests addressed by digest are immutable, so a repeat
 * GET or HEAD by digest can be answered without the upstream (which also spares registry rate
 * limits, which count manifest GETs). pull/ decides when serving from here cannot leak content:
 * entries are keyed by upstream and repository, and only requests without their own Authorization
 * read or write them. Bounded by total bytes, least recently used first out.
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

export function createManifestCache(opts: { maxBytes: number }): ManifestCache {
  const map = new Map<string, CachedManifest>();
  let bytes = 0;
  const key = (u: string, r: string, d: string) => `${u}\u0000${r}\u0000${d}`;
  return {
    get(upstream, repository, digest) {
      const k = key(upstream, repository, digest);
      const hit = map.get(k);
      if (hit) {
        // Refresh recency: Map keeps insertion order.
        map.delete(k);
        map.set(k, hit);
      }
      return hit;
    },
    set(upstream, repository, digest, manifest) {
      const size = manifest.bytes.length;
      if (size > opts.maxBytes / 8) return; // a few huge manifests must not evict everything
      const k = key(upstream, repository, digest);
      const old = map.get(k);
      if (old) {
        bytes -= old.bytes.length;
        map.delete(k);
      }
      map.set(k, manifest);
      bytes += size;
      for (const [oldest, m] of map) {
        if (bytes <= opts.maxBytes) break;
        map.delete(oldest);
        bytes -= m.bytes.length;
      }
    },
    get bytes() {
      return bytes;
    },
    get entries() {
      return map.size;
    },
  };
}
