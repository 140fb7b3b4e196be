import { DIGEST_RE } from "../oci/index.ts";
import { IN_TOTO_STATEMENT_TYPES } from "./cosign-format.ts";
import { isRecord } from "./json-field.ts";
import { quote } from "./quote.ts";
import type { DigestString } from "./types.ts";

export interface InTotoStatement {
  predicateType: string;
  subjects: readonly unknown[];
  /** The predicate as parsed (undefined when the statement has none). */
  predicate: unknown;
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
  return { predicateType: parsed.predicateType, subjects: parsed.subject, predicate: parsed.predicate };
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

/**
 * The annotations of the statement subjects that name `digest` (cosign v3 writes `sign -a k=v` there),
 * merged; only string values count.
 */
export function subjectAnnotations(
  subjects: readonly unknown[],
  digest: DigestString,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const subject of subjects) {
    if (!namesDigest([subject], digest) || !isRecord(subject) || !isRecord(subject.annotations)) continue;
    for (const [k, v] of Object.entries(subject.annotations)) if (typeof v === "string") out[k] = v;
  }
  return out;
}

/**
 * Why signed annotations do not carry what the policy requires (`cosign verify -a k=v`: each
 * required key present with exactly that string value), or undefined.
 */
export function annotationProblem(
  required: Readonly<Record<string, string>>,
  signed: unknown,
): string | undefined {
  for (const [k, v] of Object.entries(required)) {
    const have = isRecord(signed) && Object.hasOwn(signed, k) ? signed[k] : undefined;
    if (have !== v)
      return `annotation ${quote(k)} is ${typeof have === "string" ? quote(have) : have === undefined ? "missing" : "not a string"}, the project requires ${quote(v)}`;
  }
  return undefined;
}
