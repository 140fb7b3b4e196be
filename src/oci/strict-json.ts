/**
 * A strict JSON reader for bytes that Go clients will also read (manifests, indexes, configs,
 * signature payloads). JavaScript's JSON.parse and Go's encoding/json disagree on inputs that
 * RFC 8259 leaves open; pullgate must never decide on a reading the client does not share, so
 * every such input is refused here instead of being read one way:
 * - bytes that are not UTF-8 (Go substitutes U+FFFD, JS decoders may differ), a byte-order mark;
 * - `\u` escapes that leave a lone surrogate (JS keeps it, Go substitutes U+FFFD);
 * - duplicate keys in one object (both take the last, but Go also folds case: see go-fold.ts);
 * - nesting deeper than `maxDepth` (Go stops at 10000, JS at its stack: neither is a manifest);
 * - anything outside the grammar (trailing text, comments, NaN, leading zeros, raw control
 *   characters in strings).
 * Objects come back with a null prototype, so a key named `__proto__` is just a key.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export type StrictJsonResult = { ok: true; value: JsonValue } | { ok: false; problem: string };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export const DEFAULT_MAX_DEPTH = 64;

class JsonProblem extends Error {}

export function parseStrictJson(bytes: Uint8Array, maxDepth = DEFAULT_MAX_DEPTH): StrictJsonResult {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, problem: "not valid UTF-8" };
  }
  if (text.charCodeAt(0) === 0xfeff) return { ok: false, problem: "starts with a byte-order mark" };
  const reader = new Reader(text, maxDepth);
  try {
    reader.skipSpace();
    const value = reader.value(0);
    reader.skipSpace();
    if (reader.pos !== text.length) throw new JsonProblem(`unexpected text at offset ${reader.pos}`);
    return { ok: true, value };
  } catch (err) {
    if (err instanceof JsonProblem) return { ok: false, problem: err.message };
    throw err;
  }
}

const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class Reader {
  pos = 0;
  readonly #text: string;
  readonly #maxDepth: number;

  constructor(text: string, maxDepth: number) {
    this.#text = text;
    this.#maxDepth = maxDepth;
  }

  skipSpace(): void {
    const t = this.#text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.pos++;
    }
  }

  value(depth: number): JsonValue {
    const t = this.#text;
    const c = t[this.pos];
    switch (c) {
      case "{":
        return this.#object(depth + 1);
      case "[":
        return this.#array(depth + 1);
      case '"':
        return this.#string();
      case "t":
        return this.#literal("true", true);
      case "f":
        return this.#literal("false", false);
      case "n":
        return this.#literal("null", null);
      default: {
        NUMBER_RE.lastIndex = this.pos;
        const m = NUMBER_RE.exec(t);
        if (!m || m[0].length === 0 || m[0] === "-")
          throw new JsonProblem(`unexpected text at offset ${this.pos}`);
        this.pos += m[0].length;
        return Number(m[0]);
      }
    }
  }

  #literal<T>(word: string, value: T): T {
    if (!this.#text.startsWith(word, this.pos))
      throw new JsonProblem(`unexpected text at offset ${this.pos}`);
    this.pos += word.length;
    return value;
  }

  #enter(depth: number): void {
    if (depth > this.#maxDepth) throw new JsonProblem(`nested deeper than ${this.#maxDepth} levels`);
  }

  #object(depth: number): JsonObject {
    this.#enter(depth);
    const out = Object.create(null) as JsonObject;
    this.pos++; // {
    this.skipSpace();
    if (this.#text[this.pos] === "}") {
      this.pos++;
      return out;
    }
    for (;;) {
      if (this.#text[this.pos] !== '"') throw new JsonProblem(`expected a key at offset ${this.pos}`);
      const key = this.#string();
      if (Object.hasOwn(out, key))
        throw new JsonProblem(`duplicate key ${JSON.stringify(key.slice(0, 100))}`);
      this.skipSpace();
      if (this.#text[this.pos] !== ":") throw new JsonProblem(`expected ':' at offset ${this.pos}`);
      this.pos++;
      this.skipSpace();
      out[key] = this.value(depth);
      this.skipSpace();
      const next = this.#text[this.pos];
      this.pos++;
      if (next === "}") return out;
      if (next !== ",") throw new JsonProblem(`expected ',' or '}' at offset ${this.pos - 1}`);
      this.skipSpace();
    }
  }

  #array(depth: number): JsonValue[] {
    this.#enter(depth);
    const out: JsonValue[] = [];
    this.pos++; // [
    this.skipSpace();
    if (this.#text[this.pos] === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.skipSpace();
      const next = this.#text[this.pos];
      this.pos++;
      if (next === "]") return out;
      if (next !== ",") throw new JsonProblem(`expected ',' or ']' at offset ${this.pos - 1}`);
      this.skipSpace();
    }
  }

  #string(): string {
    const t = this.#text;
    this.pos++; // opening quote
    let out = "";
    let start = this.pos;
    for (;;) {
      if (this.pos >= t.length) throw new JsonProblem("unterminated string");
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) throw new JsonProblem(`control character in a string at offset ${this.pos}`);
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(start, this.pos);
      const e = t[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case "\\":
          out += "\\";
          break;
        case "/":
          out += "/";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const unit = this.#hex4();
          if (unit >= 0xd800 && unit <= 0xdbff) {
            // A high surrogate must be followed by an escaped low surrogate.
            if (t[this.pos] !== "\\" || t[this.pos + 1] !== "u")
              throw new JsonProblem("lone surrogate escape");
            this.pos += 2;
            const low = this.#hex4();
            if (low < 0xdc00 || low > 0xdfff) throw new JsonProblem("lone surrogate escape");
            out += String.fromCharCode(unit, low);
          } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            throw new JsonProblem("lone surrogate escape");
          } else {
            out += String.fromCharCode(unit);
          }
          break;
        }
        default:
          throw new JsonProblem(`invalid escape at offset ${this.pos - 2}`);
      }
      start = this.pos;
    }
  }

  #hex4(): number {
    const s = this.#text.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(s)) throw new JsonProblem(`invalid \\u escape at offset ${this.pos}`);
    this.pos += 4;
    return Number.parseInt(s, 16);
  }
}
