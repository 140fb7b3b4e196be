import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ArtifactBlobKind, checkArtifactBlob, readsAsTar } from "./signature-artifact.ts";

const KINDS: ArtifactBlobKind[] = ["simplesigning", "dsse-envelope", "sigstore-bundle", "image-config"];

/**
 * Go's archive/tar header check (reader.go readHeader → block.getFormat), written from Go's source
 * independently of readsAsTar: an all-zero block is end-of-archive (not a header); else the chksum
 * field (bytes 148–155) is parsed with parser.parseOctal (bytes.Trim " \x00", then cut at the first
 * NUL, then strconv.ParseUint base 8) and must equal the unsigned or the signed byte sum of the block
 * with the chksum field counted as 8 spaces.
 */
function goReadsTarHeader(bytes: Uint8Array): boolean {
  if (bytes.length < 512) return false;
  const block = bytes.subarray(0, 512);
  if (block.every((b) => b === 0)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 32 : (block[i] as number);
    unsigned += b;
    signed += (b << 24) >> 24;
  }
  let field = [...block.subarray(148, 156)];
  while (field.length > 0 && (field[0] === 0x20 || field[0] === 0)) field.shift();
  while (field.length > 0 && (field[field.length - 1] === 0x20 || field[field.length - 1] === 0)) field.pop();
  let value = 0;
  if (field.length > 0) {
    const nul = field.indexOf(0);
    if (nul !== -1) field = field.slice(0, nul);
    if (field.length === 0 || !field.every((c) => c >= 0x30 && c <= 0x37)) return false; // ParseUint error
    value = field.reduce((acc, c) => acc * 8 + (c - 0x30), 0);
  }
  return value === unsigned || value === signed;
}

/** Writes a checksum into bytes 148–155 in one of the spellings tar writers (and attackers) use. */
function withChecksum(block: Uint8Array, style: number, useSigned: boolean): Uint8Array {
  const out = new Uint8Array(block);
  out.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    unsigned += out[i] as number;
    signed += ((out[i] as number) << 24) >> 24;
  }
  const sum = useSigned && signed >= 0 ? signed : unsigned;
  const octal = sum.toString(8);
  const spellings = [
    `${octal.padStart(6, "0")}\0 `, // GNU/ustar
    `${octal.padStart(7, "0")}\0`,
    `${octal.padStart(7, "0")} `,
    ` ${octal.padStart(6, " ")} `, // leading spaces, trimmed
    `${octal}\0junk`.slice(0, 8).padEnd(8, "\0"), // junk after a NUL is cut off
    octal.padStart(8, "0"),
  ];
  const field = (spellings[style % spellings.length] as string).slice(0, 8).padEnd(8, " ");
  for (let i = 0; i < 8; i++) out[148 + i] = field.charCodeAt(i);
  return out;
}

const block = fc.uint8Array({ minLength: 512, maxLength: 700 });
const tarLike = fc
  .tuple(block, fc.nat(), fc.boolean())
  .map(([b, style, useSigned]) => withChecksum(b, style, useSigned));

/** A JSON document of `kind`'s shape whose first 512 bytes also carry a valid tar checksum. */
const jsonPolyglot = fc
  .tuple(
    fc.constantFrom(...KINDS),
    fc.string({ unit: fc.constantFrom(..."abcXYZ019 _-./~"), minLength: 0, maxLength: 400 }),
  )
  .map(([kind, filler]) => {
    const prefix: Record<ArtifactBlobKind, string> = {
      simplesigning: '{"critical":{"type":"x","image":{}},"p":"',
      "dsse-envelope": '{"payloadType":"x","payload":"","signatures":[],"p":"',
      "sigstore-bundle":
        '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"p":"',
      "image-config": '{"architecture":"amd64","p":"',
    };
    // Put the string's content over bytes 148–155 (where the checksum goes), then close the document.
    const head = prefix[kind].padEnd(148, "a").slice(0, Math.max(prefix[kind].length, 148));
    let text = `${head}        ${filler}`.padEnd(520, "z");
    text = `${text}"}`;
    const bytes = new TextEncoder().encode(text);
    return { kind, bytes: withChecksum(bytes, 2, false) };
  });

describe("readsAsTar (property)", () => {
  it("agrees with Go's archive/tar header check on random blocks and on blocks with a written checksum", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), block, tarLike), (bytes) => {
        expect(readsAsTar(bytes)).toBe(goReadsTarHeader(bytes));
      }),
      { numRuns: 1500 },
    );
  });

  it("recognizes every block whose checksum field is written in a spelling Go reads", () => {
    fc.assert(
      fc.property(tarLike, (bytes) => {
        expect(goReadsTarHeader(bytes)).toBe(true);
        expect(readsAsTar(bytes)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("checkArtifactBlob (property)", () => {
  it("never throws on arbitrary bytes or arbitrary JSON, for every kind", () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      tarLike,
      fc.jsonValue({ maxDepth: 4 }).map((v) => new TextEncoder().encode(JSON.stringify(v) ?? "null")),
    );
    fc.assert(
      fc.property(fc.constantFrom(...KINDS), input, (kind, bytes) => {
        const problem = checkArtifactBlob(kind, bytes);
        if (problem !== undefined) expect(typeof problem).toBe("string");
      }),
      { numRuns: 1500 },
    );
  });

  it("refuses every blob that reads as a tar header, even one that is a well-formed document of its kind", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          jsonPolyglot,
          fc.tuple(fc.constantFrom(...KINDS), tarLike).map(([kind, bytes]) => ({ kind, bytes })),
        ),
        ({ kind, bytes }) => {
          expect(readsAsTar(bytes)).toBe(true);
          expect(checkArtifactBlob(kind, bytes)).toBe("it reads as a tar archive");
        },
      ),
      { numRuns: 500 },
    );
  });

  it("the polyglots really are documents of their kind (the tar check is what refuses them)", () => {
    fc.assert(
      fc.property(jsonPolyglot, ({ kind, bytes }) => {
        const text = new TextDecoder().decode(bytes);
        expect(() => JSON.parse(text)).not.toThrow();
        const copy = new Uint8Array(bytes);
        copy.fill(0x7a, 148, 156); // "zzzzzzzz": no longer a checksum
        fc.pre(!readsAsTar(copy));
        expect(checkArtifactBlob(kind, copy)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it("accepts an accepted document only if it is strict JSON of an object", () => {
    fc.assert(
      fc.property(fc.constantFrom(...KINDS), fc.jsonValue({ maxDepth: 3 }), (kind, value) => {
        const text = JSON.stringify(value) ?? "null";
        const problem = checkArtifactBlob(kind, new TextEncoder().encode(text));
        if (problem === undefined)
          expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
