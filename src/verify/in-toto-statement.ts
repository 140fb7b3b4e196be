import { DIGEST_RE } from "../oci/index.ts";
import { IN_TOTO_STATEMENT_TYPES } from "./cosign-format.ts";
import { isRecord } from "./json-field.ts";
import { quote } from "./quote.ts";
import type { DigestString } from "./types.ts";

export interface InTotoStatement {
  predicateType: string;
  subjects: readonly unknown[];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A DSSE payload → in-toto statement (v1 or v0.1), or why it is not one. */
export function readStatement(payload: Uint8Array): InTotoStatement | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(payload));
  } catch {
    return "DSSE payload is not JSON";
  }
  if (!isRecord(parsed)) return "in-toto statement is not an object";
  const type = parsed._type;
  if (typeof type !== "string" || !IN_TOTO_STATEMENT_TYPES.includes(type)) {
    return `in-toto _type ${typeof type === "string" ? quote(type) : "missing"}`;
  }
  if (typeof parsed.predicateType !== "string") return "in-toto statement has no predicateType";
  if (!Array.isArray(parsed.subject)) return "in-toto statement has no subject list";
  return { predicateType: parsed.predicateType, subjects: parsed.subject };
}

/**
 * Does some statement subject name `digest`: `digest.sha256` (or `digest.sha512` for a sha512 digest)
 * equal to its hex? A malformed `digest` names nothing.
 */
export function namesDigest(subjects: readonly unknown[], digest: DigestString): boolean {
  if (!DIGEST_RE.test(digest)) return false;
  const [algorithm, hex] = digest.split(":") as [string, string];
  return subjects.some((subject) => {
    if (!isRecord(subject) || !isRecord(subject.digest)) return false;
    return Object.hasOwn(subject.digest, algorithm) && subject.digest[algorithm] === hex;
  });
}
