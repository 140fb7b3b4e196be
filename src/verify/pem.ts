import { decodeBase64 } from "./decode-base64.ts";

export interface PemBlock {
  /** The label between `-----BEGIN ` and `-----`, e.g. "PUBLIC KEY". */
  label: string;
  /** The decoded body; undefined when it is not plain base64 (headers such as Proc-Type, garbage). */
  der: Uint8Array | undefined;
}

const PEM_BLOCK_RE = /-----BEGIN ([A-Z0-9 ]{1,64})-----([\s\S]*?)-----END ([A-Z0-9 ]{1,64})-----/g;

/** Every PEM block in `text`, in order. A block whose END label differs from its BEGIN label is skipped. */
export function parsePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK_RE)) {
    const [, label = "", body = "", endLabel] = match;
    if (endLabel !== label) continue;
    blocks.push({ label, der: decodeBase64(body.replace(/[ \t]/g, "").trim()) });
  }
  return blocks;
}

/** DER of every CERTIFICATE block in `text`; undefined when a certificate block does not decode. */
export function parseCertificatePems(text: string): Uint8Array[] | undefined {
  const ders: Uint8Array[] = [];
  for (const block of parsePemBlocks(text)) {
    if (block.label !== "CERTIFICATE") continue;
    if (block.der === undefined) return undefined;
    ders.push(block.der);
  }
  return ders;
}
