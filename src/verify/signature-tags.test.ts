import { describe, expect, it } from "vitest";
import type { Digest } from "../oci/index.ts";
import { legacySignatureTag, referrersTagSchemaTag } from "./signature-tags.ts";

const hex256 = "634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";
const hex512 = "ab".repeat(64);

describe("signature tags", () => {
  it("legacySignatureTag: sha256:<hex> → sha256-<hex>.sig", () => {
    expect(legacySignatureTag(`sha256:${hex256}`)).toBe(`sha256-${hex256}.sig`);
    expect(legacySignatureTag(`sha512:${hex512}`)).toBe(`sha512-${hex512}.sig`);
  });

  it("referrersTagSchemaTag: <alg>-<hex truncated to 64>", () => {
    expect(referrersTagSchemaTag(`sha256:${hex256}`)).toBe(`sha256-${hex256}`);
    expect(referrersTagSchemaTag(`sha512:${hex512}`)).toBe(`sha512-${hex512.slice(0, 64)}`);
  });

  it("a non-digest is a programming error (TypeError)", () => {
    for (const bad of ["sha256:abc", "latest", `sha256:${hex256.toUpperCase()}`, `md5:${hex256}`]) {
      expect(() => legacySignatureTag(bad as Digest)).toThrow(TypeError);
      expect(() => referrersTagSchemaTag(bad as Digest)).toThrow(TypeError);
    }
  });
});
