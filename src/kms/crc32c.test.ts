import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32c as independentCrc32c } from "../../test/support/fake-kms.ts";
import { crc32c } from "./crc32c.ts";

describe("crc32c", () => {
  it("gives the check value and RFC 3720's test vectors", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it("agrees with the bitwise implementation the fake Cloud KMS uses", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        expect(crc32c(bytes)).toBe(independentCrc32c(bytes));
      }),
    );
  });
});
