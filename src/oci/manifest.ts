import { MediaType } from "./media-types.ts";
import { type JsonObject, type JsonValue, parseStrictJson } from "./strict-json.ts";

/**
 * A manifest or index as Go clients (containerd, containers/image → skopeo, podman, CRI-O) will read
 * it, or the reason it is ambiguous. Go's encoding/json matches object keys to struct fields
 * case-insensitively with Unicode simple folding (so `Layers`, `LAYERS` and `layerſ` all fill
 * `layers`) and the last match wins; JSON.parse matches exactly. Every decision pullgate makes on a
 * manifest (signature artifact or not, which children an index admits, which blobs it lists) is
 * made on this reading, and a manifest two parsers could read differently is refused as ambiguous:
 * - anything parseStrictJson refuses (not UTF-8, duplicate keys, lone surrogates, too deep, …);
 * - at a position Go decodes into a struct (the manifest, a descriptor, a platform), a key that Go
 *   folds onto a known field name without being exactly that name;
 * - a known field of the wrong JSON type (Go would fail or zero it: we cannot tell which matters);
 * - image-manifest fields (`config`, `layers`) and index fields (`manifests`) in one document, or
 *   the kind the served Content-Type names disagreeing with the fields present;
 * - a `mediaType` in the body that differs from the manifest type in the Content-Type header (clients
 *   pick the parser from the header).
 */

export interface Descriptor {
  mediaType: string | undefined;
  digest: string | undefined;
  size: number | undefined;
  artifactType: string | undefined;
  annotations: Readonly<Record<string, string>>;
  /** `platform` is present (index entries of a platform index). */
  hasPlatform: boolean;
  /** Foreign-layer URLs a client may fetch the blob from instead of the registry. */
  urls: readonly string[] | undefined;
  /** Embedded `data` (the blob inline in the descriptor). */
  hasData: boolean;
}

export interface Manifest {
  schemaVersion: number | undefined;
  mediaType: string | undefined;
  artifactType: string | undefined;
  config: Descriptor | undefined;
  layers: readonly Descriptor[] | undefined;
  manifests: readonly Descriptor[] | undefined;
  subject: Descriptor | undefined;
  annotations: Readonly<Record<string, string>>;
  /** Docker schema 1 fields are present (fsLayers, history, signatures). */
  schema1: boolean;
}

export type ManifestReading = { ok: true; manifest: Manifest } | { ok: false; problem: string };

const MANIFEST_FIELDS = [
  "schemaVersion",
  "mediaType",
  "artifactType",
  "config",
  "layers",
  "manifests",
  "subject",
  "annotations",
  "fsLayers",
  "history",
  "signatures",
  "name",
  "tag",
  "architecture",
] as const;
const DESCRIPTOR_FIELDS = [
  "mediaType",
  "digest",
  "size",
  "urls",
  "annotations",
  "data",
  "platform",
  "artifactType",
] as const;
const PLATFORM_FIELDS = ["architecture", "os", "os.version", "os.features", "variant", "features"] as const;

const INDEX_TYPES: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];
const IMAGE_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];
const SCHEMA1_TYPES: readonly string[] = [MediaType.dockerManifestV1, MediaType.dockerManifestV1Signed];

class Ambiguous extends Error {}

/**
 * Reads manifest bytes as Go clients will. `contentType` is the Content-Type pullgate serves them
 * with (clients choose the parser from it); undefined when unknown.
 */
export function readManifest(bytes: Uint8Array, contentType?: string): ManifestReading {
  const parsed = parseStrictJson(bytes);
  if (!parsed.ok) return { ok: false, problem: `its JSON ${parsed.problem}` };
  try {
    const root = asObject(parsed.value, "the manifest");
    checkFolding(root, MANIFEST_FIELDS, "the manifest");
    const manifest: Manifest = {
      schemaVersion: optionalInteger(root, "schemaVersion"),
      mediaType: optionalString(root, "mediaType", "the manifest"),
      artifactType: optionalString(root, "artifactType", "the manifest"),
      config: optionalDescriptor(root, "config"),
      layers: optionalDescriptors(root, "layers"),
      manifests: optionalDescriptors(root, "manifests"),
      subject: optionalDescriptor(root, "subject"),
      annotations: stringMap(root.annotations, "the manifest's annotations"),
      schema1: ["fsLayers", "history", "signatures"].some((f) => present(root, f)),
    };
    checkKind(manifest, mediaTypeEssence(contentType));
    return { ok: true, manifest };
  } catch (err) {
    if (err instanceof Ambiguous) return { ok: false, problem: err.message };
    throw err;
  }
}

/** `type/subtype` of a Content-Type, lower case, without parameters. */
export function mediaTypeEssence(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const essence = contentType.split(";")[0]?.trim().toLowerCase();
  return essence === "" ? undefined : essence;
}

export function isIndexMediaType(type: string | undefined): boolean {
  return type !== undefined && INDEX_TYPES.includes(type);
}

export function isImageManifestMediaType(type: string | undefined): boolean {
  return type !== undefined && IMAGE_TYPES.includes(type);
}

function checkKind(m: Manifest, servedType: string | undefined): void {
  const imageFields = m.config !== undefined || m.layers !== undefined;
  const indexFields = m.manifests !== undefined;
  if (imageFields && indexFields) {
    throw new Ambiguous("it has both image fields (config, layers) and index fields (manifests)");
  }
  const knownServed =
    servedType !== undefined &&
    (INDEX_TYPES.includes(servedType) ||
      IMAGE_TYPES.includes(servedType) ||
      SCHEMA1_TYPES.includes(servedType));
  if (knownServed && m.mediaType !== undefined && m.mediaType !== servedType) {
    throw new Ambiguous(
      `its mediaType ${JSON.stringify(m.mediaType)} differs from the Content-Type ${servedType}`,
    );
  }
  const kind = knownServed ? servedType : m.mediaType;
  if (kind !== undefined && INDEX_TYPES.includes(kind) && (imageFields || m.schema1)) {
    throw new Ambiguous(`it is served as an index (${kind}) but has image manifest fields`);
  }
  if (kind !== undefined && (IMAGE_TYPES.includes(kind) || SCHEMA1_TYPES.includes(kind)) && indexFields) {
    throw new Ambiguous(`it is served as an image manifest (${kind}) but has index fields`);
  }
  if (kind !== undefined && IMAGE_TYPES.includes(kind) && m.schema1) {
    throw new Ambiguous(`it is served as ${kind} but has Docker schema 1 fields`);
  }
}

/**
 * Go's key matching: encoding/json compares a key to a field name with bytes.EqualFold, i.e. Unicode
 * simple folding. Against ASCII field names that means ASCII case, plus U+212A KELVIN SIGN ≡ k and
 * U+017F LATIN SMALL LETTER LONG S ≡ s (the only non-ASCII members of ASCII letters' fold orbits).
 */
export function goFoldAscii(key: string): string | undefined {
  let out = "";
  for (const ch of key) {
    const c = ch.codePointAt(0) as number;
    if (c < 0x80) out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c + 0x20) : ch;
    else if (c === 0x212a) out += "k";
    else if (c === 0x17f) out += "s";
    else return undefined; // cannot fold onto an ASCII name
  }
  return out;
}

const foldTables = new Map<readonly string[], Map<string, string>>();

function foldTable(fields: readonly string[]): Map<string, string> {
  let table = foldTables.get(fields);
  if (!table) {
    table = new Map(fields.map((f) => [goFoldAscii(f) as string, f]));
    foldTables.set(fields, table);
  }
  return table;
}

/**
 * The problem with an object Go decodes into a struct with `fields`: a key that Go reads as one of
 * the fields but JSON.parse does not (which also covers two keys for one field); undefined if none.
 */
export function foldedKeyProblem(
  obj: JsonObject,
  fields: readonly string[],
  where: string,
): string | undefined {
  const table = foldTable(fields);
  for (const key of Object.keys(obj)) {
    const folded = goFoldAscii(key);
    if (folded === undefined) continue;
    const field = table.get(folded);
    if (field !== undefined && field !== key) {
      return `${where} has the key ${JSON.stringify(key.slice(0, 100))}, which Go clients read as ${JSON.stringify(field)}`;
    }
  }
  return undefined;
}

function checkFolding(obj: JsonObject, fields: readonly string[], where: string): void {
  const problem = foldedKeyProblem(obj, fields, where);
  if (problem !== undefined) throw new Ambiguous(problem);
}

function present(obj: JsonObject, key: string): boolean {
  return Object.hasOwn(obj, key) && obj[key] !== null;
}

function asObject(value: JsonValue | undefined, where: string): JsonObject {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Ambiguous(`${where} is not a JSON object`);
  }
  return value;
}

function optionalString(obj: JsonObject, key: string, where: string): string | undefined {
  if (!present(obj, key)) return undefined;
  const v = obj[key];
  if (typeof v !== "string") throw new Ambiguous(`${where}'s ${key} is not a string`);
  return v;
}

function optionalInteger(obj: JsonObject, key: string): number | undefined {
  if (!present(obj, key)) return undefined;
  const v = obj[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new Ambiguous(`${key} is not a non-negative integer`);
  }
  return v;
}

function stringMap(value: JsonValue | undefined, where: string): Readonly<Record<string, string>> {
  if (value === undefined || value === null) return {};
  const obj = asObject(value, where);
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v !== "string") throw new Ambiguous(`${where} has a value that is not a string`);
    out[k] = v;
  }
  return out;
}

function optionalDescriptor(obj: JsonObject, key: string): Descriptor | undefined {
  if (!present(obj, key)) return undefined;
  return toDescriptor(obj[key], key);
}

function optionalDescriptors(obj: JsonObject, key: string): Descriptor[] | undefined {
  if (!present(obj, key)) return undefined;
  const v = obj[key];
  if (!Array.isArray(v)) throw new Ambiguous(`${key} is not an array`);
  return v.map((d, i) => toDescriptor(d, `${key}[${i}]`));
}

function toDescriptor(value: JsonValue | undefined, where: string): Descriptor {
  const d = asObject(value, where);
  checkFolding(d, DESCRIPTOR_FIELDS, where);
  const size = present(d, "size") ? d.size : undefined;
  if (size !== undefined && (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)) {
    throw new Ambiguous(`${where}.size is not a non-negative integer`);
  }
  let urls: string[] | undefined;
  if (present(d, "urls")) {
    const u = d.urls;
    if (!Array.isArray(u) || !u.every((x) => typeof x === "string")) {
      throw new Ambiguous(`${where}.urls is not an array of strings`);
    }
    urls = u as string[];
  }
  if (present(d, "platform")) {
    const p = asObject(d.platform, `${where}.platform`);
    checkFolding(p, PLATFORM_FIELDS, `${where}.platform`);
  }
  optionalString(d, "data", where);
  return {
    mediaType: optionalString(d, "mediaType", where),
    digest: optionalString(d, "digest", where),
    size: size as number | undefined,
    artifactType: optionalString(d, "artifactType", where),
    annotations: stringMap(d.annotations, `${where}.annotations`),
    hasPlatform: present(d, "platform"),
    urls,
    hasData: present(d, "data"),
  };
}
