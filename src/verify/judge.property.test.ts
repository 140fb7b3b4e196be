import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { bundleFromJSON } from "@sigstore/bundle";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FIXTURES, fixtureCase, sha256Digest, vectorKey } from "../../test/support/vectors.ts";
import { keyAuthorities } from "./authorities.test-helpers.ts";
import {
  BUNDLE_V03_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  COSIGN_SIGNATURE_ANNOTATION,
  DSSE_ENVELOPE_MEDIA_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  SIMPLESIGNING_MEDIA_TYPE,
  SIMPLESIGNING_PAYLOAD_TYPE,
} from "./cosign-format.ts";
import { decodeBase64 } from "./decode-base64.ts";
import { namesDigest, readStatement } from "./in-toto-statement.ts";
import { judgeBundle } from "./judge-bundle.ts";
import { judgeLegacyLayer } from "./judge-legacy-layer.ts";
import { judgeSignatures } from "./judge-signatures.ts";
import { keyHint, parseTrustedKey } from "./trusted-key.ts";
import type { BundleEvidence, LegacyLayerEvidence, SignatureEvidence, TrustedKey } from "./types.ts";

// ---- keys and signed evidence (as in judge-signatures.test.ts) ------------------------------------

interface Signer {
  privateKey: KeyObject;
  trusted: TrustedKey;
  hash: string | null;
}

function makeSigner(name: string, type: "ec" | "ed25519"): Signer {
  const { privateKey, publicKey } =
    type === "ec" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("ed25519");
  const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
  return { privateKey, trusted: parseTrustedKey({ name, pem }), hash: type === "ec" ? "sha256" : null };
}

const p256 = makeSigner("p256", "ec");
const ed = makeSigner("ed25519", "ed25519");
const outsider = makeSigner("outsider", "ec");
const cosignPub = vectorKey(`${FIXTURES}/cosign.pub`, "cosign");
const TRUSTED = keyAuthorities([p256.trusted, ed.trusted, cosignPub]);
const signers = [p256, ed];

const DIGEST = sha256Digest(Buffer.from("an image manifest"));
const fixtureLayer = fixtureCase("dir-img-cosign-valid").evidence.layers[0] as LegacyLayerEvidence;
const FIXTURE_DIGEST = fixtureCase("dir-img-cosign-valid").digest as string;

function simpleSigningPayload(digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": "registry.test/app" },
        image: { "docker-manifest-digest": digest },
        type: SIMPLESIGNING_PAYLOAD_TYPE,
      },
      optional: null,
    }),
  );
}

function signedLayer(signer: Signer, payload: Uint8Array): LegacyLayerEvidence {
  return {
    mediaType: SIMPLESIGNING_MEDIA_TYPE,
    digest: sha256Digest(payload),
    annotations: {
      [COSIGN_SIGNATURE_ANNOTATION]: sign(signer.hash, payload, signer.privateKey).toString("base64"),
    },
    payload,
  };
}

function pae(type: string, body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);
}

function statement(digest: string): Buffer {
  const [algorithm, hex] = digest.split(":") as [string, string];
  return Buffer.from(
    JSON.stringify({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ name: "registry.test/app", digest: { [algorithm]: hex } }],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
  );
}

function bundleJson(signer: Signer, payload: Uint8Array, payloadType = IN_TOTO_PAYLOAD_TYPE) {
  return {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: keyHint(signer.trusted) }, tlogEntries: [] },
    dsseEnvelope: {
      payload: Buffer.from(payload).toString("base64"),
      payloadType,
      signatures: [
        {
          sig: sign(signer.hash, pae(payloadType, payload), signer.privateKey).toString("base64"),
          keyid: "",
        },
      ],
    },
  };
}

function bundleEvidence(
  bytes: Uint8Array,
  artifactType: string | undefined = BUNDLE_V03_MEDIA_TYPE,
): BundleEvidence {
  return { format: "sigstore-bundle", source: sha256Digest(bytes), artifactType, bundle: bytes };
}

const legacyOf = (layers: LegacyLayerEvidence[]): SignatureEvidence => ({
  format: "cosign-legacy",
  source: sha256Digest(Buffer.from("sig")),
  layers,
});

/** Flips some bits of one byte (never a no-op). */
const byteFlip = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }));
function flip(bytes: Uint8Array, [at, mask]: [number, number]): Buffer {
  const out = Buffer.from(bytes);
  const i = at % out.length;
  out[i] = (out[i] as number) ^ mask;
  return out;
}

// ---- generators ------------------------------------------------------------------------------------

const hex64 = fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 });
const digestish = fc.oneof(
  fc.constant(DIGEST),
  fc.constant(DIGEST),
  fc.constant(FIXTURE_DIGEST),
  hex64.map((h) => `sha256:${h}`),
  fc.constantFrom("", "sha256:", "latest", DIGEST.toUpperCase(), `${DIGEST} `, `sha512:${"0".repeat(128)}`),
);
const b64ish = fc.oneof(
  fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString("base64")),
  fc.string({ unit: fc.constantFrom(..."AZaz09+/=-_\r\n !"), maxLength: 40 }),
  fc.constant(fixtureLayer.annotations[COSIGN_SIGNATURE_ANNOTATION] as string),
);
/** JSON values shaped like the documents verify/ reads, with random holes and wrong types. */
const simpleSigningish = fc
  .record(
    {
      critical: fc.oneof(
        fc.record(
          {
            type: fc.oneof(fc.constant(SIMPLESIGNING_PAYLOAD_TYPE), fc.jsonValue({ maxDepth: 1 })),
            image: fc.oneof(
              fc.record({ "docker-manifest-digest": fc.oneof(digestish, fc.jsonValue({ maxDepth: 1 })) }),
              fc.jsonValue({ maxDepth: 1 }),
            ),
            identity: fc.jsonValue({ maxDepth: 2 }),
          },
          { requiredKeys: [] },
        ),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      optional: fc.jsonValue({ maxDepth: 2 }),
      __proto__: fc.jsonValue({ maxDepth: 1 }),
    },
    { requiredKeys: [] },
  )
  .map((v) => Buffer.from(JSON.stringify(v)));
const payloadBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
  simpleSigningish,
  digestish.map(simpleSigningPayload),
);
const statementish = fc
  .record(
    {
      _type: fc.oneof(
        fc.constantFrom("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      predicateType: fc.oneof(fc.constant(COSIGN_SIGN_PREDICATE), fc.jsonValue({ maxDepth: 1 })),
      subject: fc.oneof(
        fc.array(
          fc.oneof(
            fc.record({
              digest: fc.dictionary(
                fc.constantFrom("sha256", "sha512", "__proto__", "SHA256"),
                fc.oneof(hex64, fc.jsonValue({ maxDepth: 1 })),
              ),
            }),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          { maxLength: 3 },
        ),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      predicate: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: [] },
  )
  .map((v) => Buffer.from(JSON.stringify(v)));
const bundleish = fc.record(
  {
    mediaType: fc.oneof(
      fc.constantFrom(
        BUNDLE_V03_MEDIA_TYPE,
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle.v0.9+json",
      ),
      fc.jsonValue({ maxDepth: 1 }),
    ),
    verificationMaterial: fc.oneof(
      fc.record(
        {
          publicKey: fc.oneof(
            fc.record({ hint: fc.oneof(fc.constant(keyHint(p256.trusted)), fc.string()) }),
            fc.jsonValue({ maxDepth: 1 }),
          ),
          certificate: fc.oneof(fc.record({ rawBytes: b64ish }), fc.jsonValue({ maxDepth: 1 })),
          tlogEntries: fc.oneof(fc.constant([]), fc.jsonValue({ maxDepth: 2 })),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 2 }),
    ),
    dsseEnvelope: fc.oneof(
      fc.record(
        {
          payload: fc.oneof(
            statementish.map((s) => s.toString("base64")),
            b64ish,
            fc.jsonValue({ maxDepth: 1 }),
          ),
          payloadType: fc.oneof(fc.constant(IN_TOTO_PAYLOAD_TYPE), fc.jsonValue({ maxDepth: 1 })),
          signatures: fc.oneof(
            fc.array(
              fc.record(
                { sig: fc.oneof(b64ish, fc.jsonValue({ maxDepth: 1 })), keyid: fc.string() },
                { requiredKeys: [] },
              ),
              { maxLength: 2 },
            ),
            fc.jsonValue({ maxDepth: 2 }),
          ),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 2 }),
    ),
    messageSignature: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);
/** Bundles that pass bundleFromJSON, with arbitrary statements and signature bytes. */
const structurallyValidBundle = fc
  .record({
    payload: fc.oneof(statementish, digestish.map(statement), fc.uint8Array({ minLength: 1, maxLength: 60 })),
    sig: fc.uint8Array({ minLength: 1, maxLength: 72 }),
    hint: fc.oneof(
      fc.constant(keyHint(p256.trusted)),
      fc.constant(keyHint(ed.trusted)),
      fc.string({ maxLength: 8 }),
    ),
    payloadType: fc.oneof(fc.constant(IN_TOTO_PAYLOAD_TYPE), fc.string({ maxLength: 8 })),
  })
  .map(({ payload, sig, hint, payloadType }) => ({
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint }, tlogEntries: [] },
    dsseEnvelope: {
      payload: Buffer.from(payload).toString("base64"),
      payloadType,
      signatures: [{ sig: Buffer.from(sig).toString("base64"), keyid: "" }],
    },
  }));
const bundleBytes = fc.oneof(
  structurallyValidBundle.map((v) => Buffer.from(JSON.stringify(v))),
  structurallyValidBundle.map((v) => Buffer.from(JSON.stringify(v))),
  fc.uint8Array({ maxLength: 200 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
  bundleish.map((v) => Buffer.from(JSON.stringify(v))),
);
const mediaType = fc.oneof(
  fc.constantFrom(SIMPLESIGNING_MEDIA_TYPE, DSSE_ENVELOPE_MEDIA_TYPE),
  fc.string({ maxLength: 10 }),
);
const artifactType = fc.oneof(
  { arbitrary: fc.constantFrom(BUNDLE_V03_MEDIA_TYPE, undefined), weight: 4 },
  { arbitrary: fc.string({ maxLength: 10 }), weight: 1 },
);

const RUNS = { numRuns: 200 };

// ---- properties ------------------------------------------------------------------------------------

describe("decodeBase64 (property)", () => {
  it("never throws; decodes every standard padded encoding, with CR/LF anywhere", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom("\r", "\n", "\r\n"))),
        (bytes, breaks) => {
          let text = Buffer.from(bytes).toString("base64");
          for (const [at, br] of breaks) {
            const i = at % (text.length + 1);
            text = text.slice(0, i) + br + text.slice(i);
          }
          expect(decodeBase64(text)).toEqual(new Uint8Array(bytes));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("accepts exactly the standard padded encodings (CR/LF aside), decoding 3 bytes per 4 characters", () => {
    /** RFC 4648 §4 with padding, written independently of BASE64_STD_RE. */
    const oracle = (c: string) => {
      const pad = c.endsWith("==") ? 2 : c.endsWith("=") ? 1 : 0;
      const body = c.slice(0, c.length - pad);
      return c.length % 4 === 0 && [...body].every((ch) => /[A-Za-z0-9+/]/.test(ch));
    };
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 60 }),
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.constantFrom("-", "_", " ", "\t", "!", "\u0000", "é", ".", "=", "A", "\n", ""),
          ),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        (bytes, edits) => {
          let text = Buffer.from(bytes).toString("base64");
          for (const [at, junk] of edits) {
            const i = at % (text.length + 1);
            text = text.slice(0, i) + junk + text.slice(i + (junk === "" ? 1 : 0));
          }
          const compact = text.replace(/[\r\n]/g, "");
          const out = decodeBase64(text);
          expect(out !== undefined).toBe(oracle(compact));
          if (out !== undefined) {
            const pad = compact.endsWith("==") ? 2 : compact.endsWith("=") ? 1 : 0;
            expect(out.length).toBe((compact.length / 4) * 3 - pad);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("never throws on arbitrary strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: "binary", maxLength: 60 })),
        (s) => {
          const out = decodeBase64(s);
          if (out !== undefined) expect(out).toBeInstanceOf(Uint8Array);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("in-toto statements (property)", () => {
  it("readStatement never throws, and returns a problem string or a statement with a string predicateType and a subject list", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), statementish), (bytes) => {
        const s = readStatement(bytes);
        if (typeof s === "string") return;
        expect(typeof s.predicateType).toBe("string");
        expect(Array.isArray(s.subjects)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("namesDigest never throws and is true only for a well-formed digest some subject names exactly (own property)", () => {
    fc.assert(
      fc.property(statementish, digestish, (bytes, digest) => {
        const s = readStatement(bytes);
        if (typeof s === "string") return;
        const named = namesDigest(s.subjects, digest);
        const [algorithm, hex] = digest.split(":");
        const oracle =
          /^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$/.test(digest) &&
          s.subjects.some((sub) => {
            const d = (sub as { digest?: unknown } | null)?.digest;
            return (
              typeof sub === "object" &&
              sub !== null &&
              !Array.isArray(sub) &&
              typeof d === "object" &&
              d !== null &&
              !Array.isArray(d) &&
              Object.getOwnPropertyDescriptor(d, algorithm as string)?.value === hex
            );
          });
        expect(named).toBe(oracle);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("judgeLegacyLayer (property)", () => {
  it("arbitrary layers (bytes, JSON, simple-signing-shaped payloads, base64-ish signatures) never throw and never verify", () => {
    fc.assert(
      fc.property(
        mediaType,
        fc.option(b64ish, { nil: undefined }),
        fc.option(payloadBytes, { nil: undefined }),
        digestish,
        (mt, sig, payload, digest) => {
          const layer: LegacyLayerEvidence = {
            mediaType: mt,
            digest: sha256Digest(payload ?? Buffer.alloc(0)),
            annotations: sig === undefined ? {} : { [COSIGN_SIGNATURE_ANNOTATION]: sig },
            payload,
          };
          const j = judgeLegacyLayer(layer, digest, TRUSTED);
          expect(j.result).not.toBe("verified");
          expect(j.result).not.toBe("digest-mismatch");
        },
      ),
      RUNS,
    );
  });

  it("a payload signed by an untrusted key never verifies, whatever it says", () => {
    fc.assert(
      fc.property(payloadBytes, digestish, (payload, digest) => {
        const j = judgeLegacyLayer(signedLayer(outsider, payload), digest, TRUSTED);
        expect(j.result).toBe("untrusted");
      }),
      RUNS,
    );
  });

  it("a payload a trusted key signed is verified exactly when its simple-signing claims name the digest", () => {
    fc.assert(
      fc.property(fc.constantFrom(...signers), payloadBytes, digestish, (signer, payload, digest) => {
        const j = judgeLegacyLayer(signedLayer(signer, payload), digest, TRUSTED);
        let claims: unknown;
        try {
          claims = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
        } catch {
          claims = undefined;
        }
        const critical = (claims as { critical?: { type?: unknown; image?: Record<string, unknown> } })
          ?.critical;
        const ok =
          critical?.type === SIMPLESIGNING_PAYLOAD_TYPE &&
          Object.hasOwn(critical, "type") &&
          Object.hasOwn(claims as object, "critical") &&
          typeof critical.image === "object" &&
          critical.image !== null &&
          !Array.isArray(critical.image) &&
          Object.hasOwn(critical.image, "docker-manifest-digest") &&
          critical.image["docker-manifest-digest"] === digest;
        expect(j.result === "verified").toBe(ok);
        if (j.result === "verified")
          expect(j.authority?.kind === "key" && j.authority.key.fingerprint).toBe(signer.trusted.fingerprint);
      }),
      RUNS,
    );
  });

  it("mutating any byte of a valid signed payload (self-made or the cosign fixture) makes it not verified", () => {
    const mine = signedLayer(p256, simpleSigningPayload(DIGEST));
    const mineEd = signedLayer(ed, simpleSigningPayload(DIGEST));
    expect(judgeLegacyLayer(mine, DIGEST, TRUSTED).result).toBe("verified");
    expect(judgeLegacyLayer(mineEd, DIGEST, TRUSTED).result).toBe("verified");
    expect(judgeLegacyLayer(fixtureLayer, FIXTURE_DIGEST, TRUSTED).result).toBe("verified");
    fc.assert(
      fc.property(
        fc.constantFrom(
          [mine, DIGEST] as const,
          [mineEd, DIGEST] as const,
          [fixtureLayer, FIXTURE_DIGEST] as const,
        ),
        byteFlip,
        ([layer, digest], f) => {
          const payload = flip(layer.payload as Uint8Array, f);
          // pull/ hands over payloads that hash to the layer digest: give the mutated one its own.
          const j = judgeLegacyLayer({ ...layer, payload, digest: sha256Digest(payload) }, digest, TRUSTED);
          expect(j.result).toBe("untrusted");
        },
      ),
      RUNS,
    );
  });

  it("mutating any character of the signature annotation makes it not verified, unless it decodes to the same bytes", () => {
    const layer = signedLayer(p256, simpleSigningPayload(DIGEST));
    const sig = layer.annotations[COSIGN_SIGNATURE_ANNOTATION] as string;
    const original = decodeBase64(sig) as Uint8Array;
    fc.assert(
      fc.property(fc.nat(), fc.constantFrom(..."AZaz09+/=-_\r\n !"), (at, ch) => {
        const i = at % sig.length;
        const mutated = sig.slice(0, i) + ch + sig.slice(i + 1);
        fc.pre(mutated !== sig);
        const j = judgeLegacyLayer(
          { ...layer, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: mutated } },
          DIGEST,
          TRUSTED,
        );
        if (j.result === "verified")
          expect(Buffer.from(decodeBase64(mutated) ?? []).equals(original)).toBe(true);
      }),
      RUNS,
    );
  });
});

describe("judgeBundle (property)", () => {
  it("arbitrary bytes, JSON and bundle-shaped JSON never throw and never verify", () => {
    fc.assert(
      fc.property(bundleBytes, artifactType, digestish, (bytes, at, digest) => {
        const j = judgeBundle(bundleEvidence(bytes, at), digest, TRUSTED);
        expect(j.result).not.toBe("verified");
        expect(j.result).not.toBe("digest-mismatch");
      }),
      { numRuns: 400 },
    );
  });

  it("a DSSE envelope signed by an untrusted key never verifies, whatever its statement", () => {
    fc.assert(
      fc.property(fc.oneof(statementish, fc.constant(statement(DIGEST))), digestish, (payload, digest) => {
        const bytes = Buffer.from(JSON.stringify(bundleJson(outsider, payload)));
        expect(judgeBundle(bundleEvidence(bytes), digest, TRUSTED).result).toBe("untrusted");
      }),
      RUNS,
    );
  });

  it("a trusted key's envelope is verified exactly when the statement is a cosign sign statement naming the digest", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...signers),
        fc.oneof(statementish, digestish.map(statement)),
        digestish,
        (signer, payload, digest) => {
          const bytes = Buffer.from(JSON.stringify(bundleJson(signer, payload)));
          const j = judgeBundle(bundleEvidence(bytes), digest, TRUSTED);
          const s = readStatement(payload);
          const ok =
            typeof s !== "string" &&
            s.predicateType === COSIGN_SIGN_PREDICATE &&
            namesDigest(s.subjects, digest);
          expect(j.result === "verified").toBe(ok);
          if (ok)
            expect(j.authority?.kind === "key" && j.authority.key.fingerprint).toBe(
              signer.trusted.fingerprint,
            );
        },
      ),
      RUNS,
    );
  });

  it("mutating any byte of the signed statement, or of the signature, makes it not verified", () => {
    const payload = statement(DIGEST);
    const good = bundleJson(p256, payload);
    expect(judgeBundle(bundleEvidence(Buffer.from(JSON.stringify(good))), DIGEST, TRUSTED).result).toBe(
      "verified",
    );
    const sig = Buffer.from(good.dsseEnvelope.signatures[0]?.sig as string, "base64");
    fc.assert(
      fc.property(fc.boolean(), byteFlip, (onPayload, f) => {
        const env = onPayload
          ? { ...good.dsseEnvelope, payload: flip(payload, f).toString("base64") }
          : { ...good.dsseEnvelope, signatures: [{ sig: flip(sig, f).toString("base64"), keyid: "" }] };
        const bytes = Buffer.from(JSON.stringify({ ...good, dsseEnvelope: env }));
        expect(judgeBundle(bundleEvidence(bytes), DIGEST, TRUSTED).result).not.toBe("verified");
      }),
      RUNS,
    );
  });

  it("a byte mutation anywhere in the bundle file verifies only if the envelope it decodes to is unchanged", () => {
    const payload = statement(DIGEST);
    const text = Buffer.from(JSON.stringify(bundleJson(ed, payload)));
    const envelopeOf = (bytes: Uint8Array) => {
      const b = bundleFromJSON(JSON.parse(Buffer.from(bytes).toString("utf8")));
      if (b.content.$case !== "dsseEnvelope") return undefined;
      const e = b.content.dsseEnvelope;
      return [
        e.payloadType,
        Buffer.from(e.payload).toString("hex"),
        Buffer.from(e.signatures[0]?.sig ?? []).toString("hex"),
      ];
    };
    const original = envelopeOf(text);
    fc.assert(
      fc.property(byteFlip, (f) => {
        const bytes = flip(text, f);
        const j = judgeBundle(bundleEvidence(bytes), DIGEST, TRUSTED);
        if (j.result === "verified") expect(envelopeOf(bytes)).toEqual(original);
      }),
      { numRuns: 300 },
    );
  });
});

describe("judgeSignatures over arbitrary evidence (property)", () => {
  it("never throws and is never verified without a trusted key's valid signature over a payload naming the digest", () => {
    const legacyLayer = fc
      .tuple(mediaType, fc.option(b64ish, { nil: undefined }), fc.option(payloadBytes, { nil: undefined }))
      .map(
        ([mt, sig, payload]): LegacyLayerEvidence => ({
          mediaType: mt,
          digest: sha256Digest(payload ?? Buffer.alloc(0)),
          annotations: sig === undefined ? {} : { [COSIGN_SIGNATURE_ANNOTATION]: sig },
          payload,
        }),
      );
    const evidence = fc.array(
      fc.oneof(
        fc.array(legacyLayer, { maxLength: 3 }).map(legacyOf),
        fc.tuple(bundleBytes, artifactType).map(([b, t]) => bundleEvidence(b, t)),
        // validly signed, but by an outsider or for another digest
        digestish.map((d) => legacyOf([signedLayer(outsider, simpleSigningPayload(d))])),
        hex64.map((h) => legacyOf([signedLayer(p256, simpleSigningPayload(`sha256:${h}`))])),
      ),
      { maxLength: 4 },
    );
    fc.assert(
      fc.property(evidence, fc.constantFrom(DIGEST, FIXTURE_DIGEST), (ev, digest) => {
        const verdict = judgeSignatures({ digest, authorities: TRUSTED, evidence: ev });
        expect(verdict.status).toBe("denied");
        expect(verdict.signatures.some((s) => s.result === "verified")).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
