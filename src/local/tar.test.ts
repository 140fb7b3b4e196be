import { describe, expect, it } from "vitest";
import { computeDigest } from "../oci/index.ts";
import { createTar } from "./tar.ts";

describe("createTar", () => {
  it("writes one ustar file: header, content padded to 512, two zero blocks; digest pinned", () => {
    const tar = createTar("hello.txt", Buffer.from("hello\n"));
    expect(tar.length).toBe(512 + 512 + 1024);
    expect(tar.subarray(0, 9).toString()).toBe("hello.txt");
    expect(tar.subarray(124, 135).toString()).toBe("00000000006"); // size, octal
    expect(tar.subarray(257, 262).toString()).toBe("ustar");
    expect(tar.subarray(512, 518).toString()).toBe("hello\n");
    expect(tar.subarray(1024).every((b) => b === 0)).toBe(true);
    // The header checksum: the sum of the header bytes with the checksum field read as spaces.
    const header = Buffer.from(tar.subarray(0, 512));
    const stored = Number.parseInt(header.subarray(148, 154).toString(), 8);
    header.fill(" ", 148, 156);
    expect(stored).toBe(header.reduce((sum, b) => sum + b, 0));
    // Pure function of its inputs (GNU tar lists it as -rw-r--r-- root/root 6 1970-01-01 hello.txt).
    expect(computeDigest(tar)).toBe(
      "sha256:8b3e3d7ec1c0eada9688a482a45623e3bcbdb071f7a4701f4209c324438d4cd6",
    );
  });

  it("writes content given as a size and a writer as it writes the same bytes given as a buffer", () => {
    const filled = createTar("hello.txt", { sizeBytes: 6, writeInto: (content) => content.write("hello\n") });
    expect(filled.equals(createTar("hello.txt", Buffer.from("hello\n")))).toBe(true);
  });

  it("refuses a name that does not fit the ustar header", () => {
    expect(() => createTar("x".repeat(101), Buffer.alloc(0))).toThrow(/too long/);
  });
});
