import { describe, expect, it } from "vitest";
import { createManifestCache } from "./manifest-cache.ts";

const m = (n: number, fill = 1) => ({
  bytes: Buffer.alloc(n, fill),
  contentType: "application/vnd.oci.image.manifest.v1+json",
});

describe("manifest cache", () => {
  it("keys by upstream, repository and digest", () => {
    const c = createManifestCache({ maxBytes: 10_000 });
    c.set("up", "proj/a", "sha256:1", m(10));
    expect(c.get("up", "proj/a", "sha256:1")?.bytes.length).toBe(10);
    expect(c.get("up", "proj/b", "sha256:1")).toBeUndefined();
    expect(c.get("other", "proj/a", "sha256:1")).toBeUndefined();
  });

  it("evicts the least recently used entries past the byte bound", () => {
    const c = createManifestCache({ maxBytes: 8_000 });
    for (const d of "abcdefgh") c.set("u", "r", `sha256:${d}`, m(1_000));
    c.get("u", "r", "sha256:a"); // a is now the most recent
    c.set("u", "r", "sha256:i", m(1_000));
    expect(c.get("u", "r", "sha256:b")).toBeUndefined();
    expect(c.get("u", "r", "sha256:a")).toBeDefined();
    expect(c.get("u", "r", "sha256:i")).toBeDefined();
    expect(c.bytes).toBe(8_000);
    expect(c.entries).toBe(8);
  });

  it("does not let one huge manifest evict everything, and 0 disables it", () => {
    const c = createManifestCache({ maxBytes: 8_000 });
    c.set("u", "r", "sha256:small", m(100));
    c.set("u", "r", "sha256:huge", m(2_000));
    expect(c.get("u", "r", "sha256:huge")).toBeUndefined();
    expect(c.get("u", "r", "sha256:small")).toBeDefined();
    const off = createManifestCache({ maxBytes: 0 });
    off.set("u", "r", "sha256:x", m(1));
    expect(off.entries).toBe(0);
  });

  it("bounds entries too: a flood of tiny manifests under invented names cannot grow the key space", () => {
    const c = createManifestCache({ maxBytes: 64 * 1024 * 1024, maxEntries: 1_000 });
    for (let i = 0; i < 20_000; i++) c.set("u", `proj/invented-${i}`, "sha256:x", m(2));
    expect(c.entries).toBe(1_000);
    expect(c.bytes).toBe(2_000);
    expect(c.get("u", "proj/invented-19999", "sha256:x")).toBeDefined();
    expect(c.get("u", "proj/invented-18999", "sha256:x")).toBeUndefined();
  });
});
