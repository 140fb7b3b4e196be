// Test-only: a TUF repository made in the test (one ECDSA P-256 key for every role, consistent
// snapshots, as the Sigstore repositories publish) served over HTTP on 127.0.0.1.
import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  Key,
  Metadata,
  MetaFile,
  Root,
  Signature,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
} from "@tufjs/models";

const SPEC_VERSION = "1.0.31";

function newKey(): { key: Key; privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const keyVal = { public: publicKey.export({ format: "pem", type: "spki" }).toString() };
  const meta = { keytype: "ecdsa", scheme: "ecdsa-sha2-nistp256", keyval: keyVal };
  const keyID = createHash("sha256").update(JSON.stringify(meta)).digest("hex");
  return { key: new Key({ keyID, keyType: "ecdsa", scheme: "ecdsa-sha2-nistp256", keyVal }), privateKey };
}

function signWith(signer: { key: Key; privateKey: KeyObject }) {
  return (data: Buffer) =>
    new Signature({ keyID: signer.key.keyID, sig: sign("sha256", data, signer.privateKey).toString("hex") });
}

const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const inAYear = () => new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "Z");

export class TufRepository {
  readonly #signer = newKey();
  /** URL path (without the leading slash) → bytes served. */
  readonly files = new Map<string, Buffer>();
  #version = 0;
  #server: Server | undefined;
  /** Every path requested, in order. */
  readonly requests: string[] = [];

  constructor() {
    const root = new Metadata(
      new Root({ version: 1, specVersion: SPEC_VERSION, expires: inAYear(), consistentSnapshot: true }),
    );
    for (const role of ["root", "targets", "snapshot", "timestamp"])
      root.signed.addKey(this.#signer.key, role);
    root.sign(signWith(this.#signer));
    this.files.set("1.root.json", Buffer.from(JSON.stringify(root)));
  }

  /** The trust anchor a client starts from (version 1 of root.json). */
  get rootJson(): Buffer {
    return this.files.get("1.root.json") as Buffer;
  }

  /**
   * Publishes a new version of targets, snapshot and timestamp listing `targets`. `signer` other than
   * the repository's own key makes metadata a client must refuse.
   */
  publish(targets: Record<string, Buffer>, signer: "repository" | "stranger" = "repository"): void {
    const version = ++this.#version;
    const by = signWith(signer === "repository" ? this.#signer : newKey());
    const targetsMeta = new Metadata(new Targets({ version, specVersion: SPEC_VERSION, expires: inAYear() }));
    for (const [path, content] of Object.entries(targets)) {
      targetsMeta.signed.addTarget(
        new TargetFile({ path, length: content.length, hashes: { sha256: sha256Hex(content) } }),
      );
      this.files.set(`targets/${sha256Hex(content)}.${path}`, content);
    }
    targetsMeta.sign(by);
    const targetsBytes = Buffer.from(JSON.stringify(targetsMeta));
    this.files.set(`${version}.targets.json`, targetsBytes);

    const snapshot = new Metadata(
      new Snapshot({
        version,
        specVersion: SPEC_VERSION,
        expires: inAYear(),
        meta: { "targets.json": new MetaFile({ version }) },
      }),
    );
    snapshot.sign(by);
    const snapshotBytes = Buffer.from(JSON.stringify(snapshot));
    this.files.set(`${version}.snapshot.json`, snapshotBytes);

    const timestamp = new Metadata(
      new Timestamp({
        version,
        specVersion: SPEC_VERSION,
        expires: inAYear(),
        snapshotMeta: new MetaFile({
          version,
          length: snapshotBytes.length,
          hashes: { sha256: sha256Hex(snapshotBytes) },
        }),
      }),
    );
    timestamp.sign(by);
    this.files.set("timestamp.json", Buffer.from(JSON.stringify(timestamp)));
  }

  /** Serves the files (404 for anything else); returns the base URL. */
  async start(): Promise<string> {
    const server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).replace(/^\/+/, "");
      this.requests.push(path);
      const body = this.files.get(path);
      res.writeHead(body ? 200 : 404, { "content-type": "application/octet-stream" });
      res.end(body ?? "not found");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.#server = server;
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
