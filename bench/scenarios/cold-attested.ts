import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import {
  attachBundle,
  attestLegacy,
  generateSigningKey,
  inTotoStatement,
  legacySignatureLayer,
  makeBundle,
  RegistryWriter,
  type SigningKey,
  signLegacy,
  simpleSigningPayload,
} from "../../src/local/index.ts";
import { computeDigest, MediaType } from "../../src/oci/index.ts";
import { sequentialPulls } from "../client.ts";
import { pushImagesSignedBy, type SmallImage } from "../images.ts";
import { KEYLESS_ISSUER, KEYLESS_SUBJECT, type KeylessSigner } from "../keyless-images.ts";
import { POOL_THREADS, type SharedKeylessSigner } from "../keyless-pullgate.ts";
import { sumOf } from "../metrics.ts";
import { threadCpuTicks } from "../proc.ts";
import { parseAccessLog, readSince } from "../round-trips.ts";
import {
  CONTAINERD_ACCEPT,
  DIRECT,
  type Env,
  expect,
  type Measurement,
  medianOf,
  type PullgatePolicy,
  type Scenario,
  type Target,
} from "../scenario.ts";
import type { PullgateServer, Server } from "../servers.ts";
import { COLD_PULL_METRICS, checkColdPulls, measureColdPulls } from "./cold.ts";

export const COLD_ATTESTED = "cold-attested";
/** The targets (and sampled processes): one pullgate per policy, each restarted before its runs. */
export const PULLGATE_SIGNED = "pullgate-signed";
export const PULLGATE_ATTESTED = "pullgate-attested";
export const ATTESTED_SECTION = "8. Attestations";
/** The project both pullgates enforce, and the repository of the images. */
export const ATTESTED_PROJECT = "attested";
const REPOSITORY = `${ATTESTED_PROJECT}/cold`;
const COLD_IMAGES = 200;
const PRIMERS = 20;
const WORKER_JUDGEMENTS = "pullgate_worker_judgements_total";

export const SLSA_PROVENANCE = "https://slsa.dev/provenance/v1";
export const VULN_SCAN = "https://cosign.sigstore.dev/attestation/vuln/v1";
/** The repository the release workflow builds (the provenance condition asks for it). */
export const APP_REPOSITORY = "https://github.com/acme/app";
export const PROVENANCE_CONDITION = `predicate.buildDefinition.externalParameters.workflow.repository == "${APP_REPOSITORY}"`;
export const SCAN_CONDITION = "predicate.scanner.result.summary.critical == 0";
/** The keyless identity of the policy (README's example): the release workflow of acme/app, any v* tag. */
export const CI_SUBJECT_REGEXP =
  "https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v.*";

/**
 * A SLSA v1 provenance predicate as a GitHub Actions generator writes it for a container build
 * (slsa-github-generator's layout: the workflow as external parameters, the GitHub context and an
 * abridged push event as internal parameters, the source and base image as resolved dependencies):
 * about 5 KB of JSON.
 */
export function slsaProvenance(repository = APP_REPOSITORY): Record<string, unknown> {
  const sha = "3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39";
  const before = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d";
  const fullName = repository.replace(/^https:\/\/github\.com\//, "");
  const [owner = "acme", name = "app"] = fullName.split("/");
  const person = { name: "Release Bot", email: "release-bot@acme.example", username: "acme-release-bot" };
  const commit = {
    id: sha,
    tree_id: "b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8",
    distinct: true,
    message: "release: v1.0.0\n\nBump the version, regenerate the lock file and update the changelog.",
    timestamp: "2026-12-01T09:58:12Z",
    url: `${repository}/commit/${sha}`,
    author: person,
    committer: person,
    added: [],
    removed: [],
    modified: ["CHANGELOG.md", "package.json", "package-lock.json", "Dockerfile"],
  };
  return {
    buildDefinition: {
      buildType: "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
      externalParameters: {
        workflow: { ref: "refs/tags/v1.0.0", repository, path: ".github/workflows/release.yml" },
        inputs: { "image-name": `ghcr.io/${fullName}`, platforms: "linux/amd64,linux/arm64", push: true },
        vars: {},
      },
      internalParameters: {
        github: {
          actor_id: "41898282",
          event_name: "push",
          event_payload: {
            ref: "refs/tags/v1.0.0",
            before,
            after: sha,
            base_ref: "refs/heads/main",
            created: true,
            deleted: false,
            forced: false,
            compare: `${repository}/compare/v1.0.0`,
            commits: [commit],
            head_commit: commit,
            pusher: { name: person.username, email: person.email },
            repository: {
              id: 612345678,
              node_id: "R_kgDOJH0aBg",
              name,
              full_name: fullName,
              private: false,
              owner: { login: owner, id: 98765432, type: "Organization", site_admin: false },
              html_url: repository,
              description: "The application acme ships, built and attested by its release workflow",
              fork: false,
              created_at: 1700000000,
              pushed_at: 1764583092,
              default_branch: "main",
              visibility: "public",
              topics: ["containers", "slsa", "sigstore"],
            },
            sender: { login: person.username, id: 41898282, type: "Bot", site_admin: false },
          },
          repository_id: "612345678",
          repository_owner_id: "98765432",
          runner_environment: "github-hosted",
        },
        GITHUB_ACTOR_ID: "41898282",
        GITHUB_BASE_REF: "",
        GITHUB_EVENT_NAME: "push",
        GITHUB_REF: "refs/tags/v1.0.0",
        GITHUB_REF_TYPE: "tag",
        GITHUB_REPOSITORY: fullName,
        GITHUB_REPOSITORY_ID: "612345678",
        GITHUB_REPOSITORY_OWNER_ID: "98765432",
        GITHUB_RUN_ATTEMPT: "1",
        GITHUB_RUN_ID: "12345678901",
        GITHUB_RUN_NUMBER: "421",
        GITHUB_SHA: sha,
        GITHUB_TRIGGERING_ACTOR_ID: "41898282",
        GITHUB_WORKFLOW_REF: `${fullName}/.github/workflows/release.yml@refs/tags/v1.0.0`,
        GITHUB_WORKFLOW_SHA: sha,
      },
      resolvedDependencies: [
        { uri: `git+${repository}@refs/tags/v1.0.0`, digest: { gitCommit: sha } },
        {
          uri: "pkg:docker/library/node@24-bookworm-slim?platform=linux%2Famd64",
          digest: { sha256: "5b2c1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a" },
        },
        ...[
          ["actions/checkout@v4", "11bd71901bbe5b1630ceea73d27597364c9af683"],
          ["docker/setup-qemu-action@v3", "29109295f81e9208d7d86ff1c6c12d2833863392"],
          ["docker/setup-buildx-action@v3", "b5ca514318bd6ebac0fb2aedd5d36ec1b5c232a2"],
          ["docker/build-push-action@v6", "263435318d21b8e681c14492fe198d362a7d2c83"],
          ["sigstore/cosign-installer@v3", "d7d6bc7722e3daa8354c50bcb52f4837da5e9b6a"],
          ["anchore/sbom-action@v0", "f325610c9f50a54015d37c8d16cb3b0e2c8f4de0"],
        ].map(([action, pin]) => ({ uri: `pkg:github/${action}`, digest: { gitCommit: pin } })),
      ],
    },
    runDetails: {
      builder: {
        id: "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0",
        version: { "slsa-github-generator": "v2.1.0" },
      },
      metadata: {
        invocationId: `${repository}/actions/runs/12345678901/attempts/1`,
        startedOn: "2026-12-01T10:00:03Z",
        finishedOn: "2026-12-01T10:07:41Z",
      },
      byproducts: [
        {
          name: "build-log",
          uri: `${repository}/actions/runs/12345678901/job/34567890123`,
          digest: { sha256: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0" },
        },
        {
          name: "sbom",
          uri: `oci://ghcr.io/${fullName}@sha256:1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809`,
          mediaType: "application/spdx+json",
        },
      ],
    },
  };
}

/** A cosign vuln predicate (`cosign attest --type vuln`) with `critical` critical findings. */
export function vulnScan(critical: number): Record<string, unknown> {
  return {
    invocation: { parameters: null, uri: "https://github.com/acme/security/actions/runs/1", event_id: "1" },
    scanner: {
      uri: "pkg:github/aquasecurity/trivy@0.50.0",
      version: "0.50.0",
      db: { uri: "ghcr.io/aquasecurity/trivy-db:2", version: "2" },
      result: { summary: { critical, high: 3, medium: 10, low: 2 } },
    },
    metadata: { scanStartedOn: "2026-12-01T10:08:00Z", scanFinishedOn: "2026-12-01T10:09:00Z" },
  };
}

/** The three signing keys: release and qa sign every image, security signs the scans. */
export type AttestingKeys = Record<"release" | "qa" | "security", SigningKey>;

type PolicyKind = "signed" | "attested";

/**
 * The two policies over the same images and keys: "signed", one signer among the three keys (no
 * attestations, no keyless identity: judged in process); "attested", the README's chain of attestations
 * without annotations or required signers: two distinct signers, a keyless SLSA provenance by the release
 * workflow whose workflow repository is acme/app, and a scan by the security key without critical findings
 * (a policy with a keyless identity: judged in the verification worker pool).
 */
function policyOf(kind: PolicyKind, keys: AttestingKeys, signer: KeylessSigner): PullgatePolicy {
  const keyList = (["release", "qa", "security"] as const).map((name) => ({
    name,
    pem: keys[name].publicKeyPem,
    transparencyLog: "optional",
  }));
  if (kind === "signed") return { projects: { [ATTESTED_PROJECT]: { mode: "enforce", keys: keyList } } };
  const [trustedRoot] = Object.keys(signer.trustedRoots);
  return {
    trustedRoots: signer.trustedRoots,
    projects: {
      [ATTESTED_PROJECT]: {
        mode: "enforce",
        keys: keyList,
        keyless: [{ name: "ci", issuer: KEYLESS_ISSUER, subjectRegExp: CI_SUBJECT_REGEXP, trustedRoot }],
        threshold: 2,
        attestations: [
          {
            name: "provenance",
            predicateType: SLSA_PROVENANCE,
            signers: ["ci"],
            condition: PROVENANCE_CONDITION,
          },
          { name: "scan", predicateType: VULN_SCAN, signers: ["security"], condition: SCAN_CONDITION },
        ],
      },
    },
  };
}

/** Digests of what setup pushed, to say what each upstream request read. */
type Pushed = {
  images: Set<string>;
  payloads: Set<string>;
  envelopes: Set<string>;
  bundles: Set<string>;
  referrers: Set<string>;
};

/**
 * `count` small images in REPOSITORY (tagged c<i>), each with what the attested policy asks: a `.sig` with a
 * layer by release and one by qa (the same simple-signing payload, as two `cosign sign` make), a keyless
 * SLSA provenance by the release workflow in the `.att` (private Sigstore: certificate, SCT, Rekor SET of a
 * dsse entry), and a vuln scan signed by the security key as a Sigstore bundle referrer (referrers tag schema:
 * distribution 2.8 has no referrers API). `withScan(i)` false leaves the scan out (the control image).
 */
async function pushAttestedImages(opts: {
  registryUrl: string;
  count: number;
  keys: AttestingKeys;
  signer: KeylessSigner;
  pushed: Pushed;
  withScan: (i: number) => boolean;
}): Promise<SmallImage[]> {
  const { keys, pushed } = opts;
  const images = await pushImagesSignedBy({
    registryUrl: opts.registryUrl,
    repository: REPOSITORY,
    label: "attested",
    count: opts.count,
    tagPrefix: "c",
    signLayer: (payload, payloadDigest) => legacySignatureLayer(payload, payloadDigest, keys.release),
  });
  const pool = new Pool(opts.registryUrl, { connections: 8, pipelining: 1, keepAliveTimeout: 30_000 });
  const writer = new RegistryWriter(opts.registryUrl, { dispatcher: pool });
  const provenance = slsaProvenance();
  const dockerReference = `${new URL(opts.registryUrl).host}/${REPOSITORY}`;
  try {
    let next = 0;
    const worker = async () => {
      while (next < images.length) {
        const i = next++;
        const image = images[i] as SmallImage;
        const { digest } = image;
        pushed.images.add(digest);
        pushed.payloads.add(computeDigest(simpleSigningPayload(digest)));
        await signLegacy({ writer, repository: REPOSITORY, digest, key: keys.qa });
        const statement = inTotoStatement({
          digest,
          predicateType: SLSA_PROVENANCE,
          predicate: provenance,
          name: dockerReference,
        });
        const { envelope, annotations } = await opts.signer.sigstore.attestKeylessLegacy(statement, {
          subject: KEYLESS_SUBJECT,
          issuer: KEYLESS_ISSUER,
        });
        pushed.envelopes.add(computeDigest(envelope));
        await attestLegacy({
          writer,
          repository: REPOSITORY,
          digest,
          predicateType: SLSA_PROVENANCE,
          envelope,
          annotations,
        });
        if (!opts.withScan(i)) continue;
        const bundle = makeBundle({
          digest,
          key: keys.security,
          predicateType: VULN_SCAN,
          predicate: vulnScan(0),
        });
        pushed.bundles.add(computeDigest(bundle));
        const { referrerDigest } = await attachBundle({
          writer,
          repository: REPOSITORY,
          digest,
          subjectMediaType: MediaType.ociManifest,
          subjectSize: image.manifestBytes.length,
          bundle,
          predicateType: VULN_SCAN,
        });
        pushed.referrers.add(referrerDigest);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return images;
  } finally {
    await pool.close();
  }
}

/** What one upstream request of a cold pull read, from its URI and the digests setup pushed. */
function requestKind(method: string, uri: string, pushed: Pushed): string {
  const path = uri.split("?", 1)[0] ?? "";
  const ref = path.slice(path.lastIndexOf("/") + 1);
  if (path.includes("/referrers/")) return `${method} referrers API`;
  if (path.includes("/blobs/")) {
    if (pushed.payloads.has(ref)) return `${method} simple-signing payload blob (.sig layer)`;
    if (pushed.envelopes.has(ref)) return `${method} DSSE envelope blob (.att layer: the provenance)`;
    if (pushed.bundles.has(ref)) return `${method} Sigstore bundle blob (the scan)`;
    return `${method} other blob`;
  }
  if (/^c\d+$/.test(ref)) return `${method} image manifest by tag`;
  if (pushed.images.has(ref)) return `${method} image manifest by digest`;
  if (pushed.referrers.has(ref)) return `${method} bundle referrer manifest`;
  if (ref.endsWith(".sig")) return `${method} .sig manifest`;
  if (ref.endsWith(".att")) return `${method} .att manifest`;
  if (/^sha256-[0-9a-f]{64}$/.test(ref)) return `${method} referrers tag schema index`;
  return `${method} other`;
}

type RequestCount = { request: string; status: string; perPull: number };
type Breakdown = { pulls: number; total: number; requests: RequestCount[] };

/**
 * Pulls the cold images once (HEAD by tag + GET by digest, one at a time) through a fresh pullgate under
 * each policy, in front of a second docker-registry on the same storage with its access log on, and says
 * what every upstream request read.
 */
async function countRequests(
  env: Env,
  images: SmallImage[],
  policies: Record<PolicyKind, PullgatePolicy>,
  pushed: Pushed,
): Promise<Record<PolicyKind, Breakdown>> {
  let counting: Server | undefined;
  try {
    counting = await env.startRegistry("docker-registry-count", {
      storageDir: join(env.tmp, "registry", "storage"),
      accessLog: true,
    });
    const out = {} as Record<PolicyKind, Breakdown>;
    for (const kind of ["signed", "attested"] as const) {
      await env.redis.flushall();
      const proxy = await env.startPullgate(`pullgate-${kind}-count`, counting.url, {
        policy: policies[kind],
      });
      try {
        const offset = (await stat(counting.logFile)).size;
        await sequentialPulls({ baseUrl: proxy.url, images, preconnect: false });
        await sleep(300); // the registry logs a request after answering it
        const lines = parseAccessLog(await readSince(counting.logFile, offset));
        const counts = new Map<string, RequestCount>();
        for (const line of lines) {
          const request = requestKind(line.method, line.uri, pushed);
          const key = `${request} ${line.status}`;
          const entry = counts.get(key) ?? { request, status: line.status, perPull: 0 };
          entry.perPull += 1 / images.length;
          counts.set(key, entry);
        }
        out[kind] = {
          pulls: images.length,
          total: lines.length / images.length,
          requests: [...counts.values()],
        };
      } finally {
        await env.stop(proxy);
      }
    }
    return out;
  } finally {
    if (counting) await env.stop(counting);
  }
}

/** pullgate's threads by what they run: the event loop, the verification workers, V8's platform threads. */
type ThreadKind = "main" | "workers" | "v8";
const THREAD_KINDS: readonly ThreadKind[] = ["main", "workers", "v8"];

function threadKind(comm: string): ThreadKind {
  if (comm === "MainThread") return "main";
  // V8's platform (GC marking and sweeping, compilation), shared by every isolate of the process.
  if (comm === "V8Worker" || comm === "DelayedTaskSche") return "v8";
  return "workers"; // worker_threads (piscina's: WorkerThread), and the few others (libuv, inspector)
}

/** CPU ticks of each live thread of `pid`, by thread id, with its kind. */
async function threadTicks(pid: number): Promise<Map<string, { kind: ThreadKind; ticks: number }>> {
  const out = new Map<string, { kind: ThreadKind; ticks: number }>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const comm = (await readFile(`/proc/${pid}/task/${tid}/comm`, "utf8")).trim();
      out.set(tid, { kind: threadKind(comm), ticks: await threadCpuTicks(pid, Number(tid)) });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** measureColdPulls, with pullgate's CPU split by thread kind (µs per pull) for a pullgate target. */
async function measureWithThreads(target: Target, images: SmallImage[], env: Env): Promise<Measurement> {
  const pid = target.pullgate?.().proc.pid;
  const before = pid === undefined ? undefined : await threadTicks(pid);
  const m = await measureColdPulls(target, images);
  if (pid === undefined || before === undefined) return m;
  const after = await threadTicks(pid);
  const sums: Record<ThreadKind, number> = { main: 0, workers: 0, v8: 0 };
  for (const [tid, t] of after) sums[t.kind] += t.ticks - (before.get(tid)?.ticks ?? 0);
  for (const kind of THREAD_KINDS)
    m.values[`threadCpu:${kind}`] = ((sums[kind] / env.ticks) * 1e6) / images.length;
  return m;
}

async function statusOf(url: string): Promise<number> {
  const res = await fetch(url, {
    headers: { accept: CONTAINERD_ACCEPT },
    signal: AbortSignal.timeout(30_000),
  });
  await res.arrayBuffer();
  return res.status;
}

function fmt(v: number | undefined, decimals = 2): string {
  return v === undefined ? "–" : v.toFixed(decimals);
}

function signed(v: number | undefined, decimals = 2): string {
  if (v === undefined) return "–";
  return `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(decimals)}`;
}

/**
 * Cold pulls of images that carry a whole chain of attestations, under a signature-only policy and under the
 * attested one, each on its own pullgate process (restarted before each run, as cold-keyless-pull's).
 */
export function coldAttestedPull(signerFor: SharedKeylessSigner): Scenario {
  const proxies: Partial<Record<string, PullgateServer>> = {};
  const policies = {} as Record<PolicyKind, PullgatePolicy>;
  const kindOf: Record<string, PolicyKind> = { [PULLGATE_SIGNED]: "signed", [PULLGATE_ATTESTED]: "attested" };
  let cold: SmallImage[] = [];
  let primers: SmallImage[] = [];
  let breakdown: Record<PolicyKind, Breakdown> | undefined;
  let judgementsBefore: number | undefined;
  const running = (name: string) => (): PullgateServer => {
    const proxy = proxies[name];
    if (!proxy) throw new Error(`${name} is not running`);
    return proxy;
  };
  const proxyTarget = (name: string): Target => ({
    name,
    get baseUrl() {
      return running(name)().url;
    },
    roles: { proxy: name, registry: "registry", redis: "redis" },
    pullgate: running(name),
  });
  const targets = [proxyTarget(PULLGATE_SIGNED), proxyTarget(PULLGATE_ATTESTED)];
  const restart = async (env: Env, name: string) => {
    const old = proxies[name];
    if (old) await env.stop(old);
    delete proxies[name];
    await env.redis.flushall();
    const kind = kindOf[name] as PolicyKind;
    proxies[name] = await env.startPullgate(name, env.registry.url, { policy: policies[kind] });
  };
  const judgements = async (env: Env, name: string): Promise<number | undefined> => {
    if (!env.metricsOn) return undefined;
    const s = await env.scrape(running(name)());
    return s ? sumOf(s, WORKER_JUDGEMENTS) : undefined;
  };
  return {
    id: COLD_ATTESTED,
    section: ATTESTED_SECTION,
    title: "Cold pull of an attested image, signature-only policy vs chain of attestations, 1 connection",
    about:
      `${COLD_IMAGES} different images, each carrying what README's "chain of attestations" asks: a \`.sig\` ` +
      "with a signature by the release key and one by the qa key, a keyless SLSA v1 provenance (about 5 KB of " +
      "predicate) by the release workflow in the legacy `.att` (private Sigstore made by the bench: certificate, " +
      "SCT, Rekor SET of a dsse entry), and a vuln scan signed by the security key as a Sigstore bundle referrer " +
      "(listed in the referrers tag schema: distribution 2.8 has no referrers API). Pulled cold through two " +
      `pullgate processes in front of the same registry: \`${PULLGATE_SIGNED}\` enforces a signature-only ` +
      "policy (the three keys, threshold 1, no attestations: judged in process, attestations never fetched), " +
      `\`${PULLGATE_ATTESTED}\` the chain: threshold 2, the provenance by the keyless identity with ` +
      `\`${PROVENANCE_CONDITION}\` and the scan by the security key with \`${SCAN_CONDITION}\` (a policy ` +
      `with a keyless identity: judged in the verification worker pool, ${POOL_THREADS} ` +
      `thread${POOL_THREADS === 1 ? "" : "s"} here). Before the runs, a control image without the scan must ` +
      `be allowed by ${PULLGATE_SIGNED} and denied by ${PULLGATE_ATTESTED}. pullgate's CPU is also split by ` +
      "thread (its event loop, its worker threads, V8's platform threads). pullgate runs fail unless every " +
      `pull was a fresh verification and Redis holds the ${COLD_IMAGES} verdicts afterwards. "×" is against ` +
      `${PULLGATE_SIGNED}.`,
    method:
      `Node client (undici, one keep-alive connection), ${COLD_IMAGES} pulls one after the other (HEAD by tag, ` +
      "GET by digest), latency from the HEAD to the GET's last byte. Before each pullgate run (untimed): a new " +
      `process, FLUSHALL, ${PRIMERS} other images with the same attestations pulled through it (warms its JIT, ` +
      "its upstream connections and, for the attested policy, a worker thread), FLUSHALL again",
    runLength: () => `${COLD_IMAGES} pulls per run`,
    targets: (env): Target[] => [...targets, env.targets[DIRECT]],
    baseline: PULLGATE_SIGNED,
    metrics: [
      ...COLD_PULL_METRICS,
      { key: "judgementsPerPull", label: "worker judgements/pull (/metrics)", decimals: 2 },
      { key: "pullsPerCpuS", label: "cold pulls per pullgate CPU-second (per core)", decimals: 0 },
      { key: "threadCpu:main", label: "pullgate CPU µs/pull, main thread (HTTP, lookups)", decimals: 0 },
      { key: "threadCpu:workers", label: "pullgate CPU µs/pull, verification worker threads", decimals: 0 },
      { key: "threadCpu:v8", label: "pullgate CPU µs/pull, V8 platform threads (GC, compiler)", decimals: 0 },
    ],
    cpu: "pull",
    setup: async (env) => {
      const signer = await signerFor(env);
      const keys: AttestingKeys = {
        release: generateSigningKey(),
        qa: generateSigningKey(),
        security: generateSigningKey(),
      };
      policies.signed = policyOf("signed", keys, signer);
      policies.attested = policyOf("attested", keys, signer);
      const pushed: Pushed = {
        images: new Set(),
        payloads: new Set(),
        envelopes: new Set(),
        bundles: new Set(),
        referrers: new Set(),
      };
      const t0 = performance.now();
      // The last image is the control: everything but the scan.
      const count = PRIMERS + COLD_IMAGES + 1;
      const images = await pushAttestedImages({
        registryUrl: env.registry.url,
        count,
        keys,
        signer,
        pushed,
        withScan: (i) => i < count - 1,
      });
      primers = images.slice(0, PRIMERS);
      cold = images.slice(PRIMERS, PRIMERS + COLD_IMAGES);
      const control = images[count - 1] as SmallImage;
      env.log(
        `${COLD_ATTESTED}: pushed ${images.length} images with two signatures, a keyless provenance and a scan ` +
          `in ${Math.round(performance.now() - t0)} ms`,
      );
      breakdown = await countRequests(env, cold, policies, pushed);
      for (const kind of ["signed", "attested"] as const) {
        const b = breakdown[kind];
        env.log(
          `${COLD_ATTESTED}: upstream requests per cold pull under the ${kind} policy: ${b.total.toFixed(2)} ` +
            `(${b.requests.map((r) => `${r.request} ${r.status}: ${r.perPull.toFixed(2)}`).join("; ")})`,
        );
      }
      env.facts[COLD_ATTESTED] = { breakdown, images: cold.map((i) => i.digest), control: control.digest };
      for (const t of targets) await restart(env, t.name);
      const path = `/v2/${control.repository}/manifests/${control.tag}`;
      const allowed = await statusOf(`${running(PULLGATE_SIGNED)().url}${path}`);
      const denied = await statusOf(`${running(PULLGATE_ATTESTED)().url}${path}`);
      if (allowed !== 200 || denied !== 403)
        throw new Error(
          `the control image without a scan: ${PULLGATE_SIGNED} answered ${allowed} (expected 200), ` +
            `${PULLGATE_ATTESTED} ${denied} (expected 403)`,
        );
      env.log(`${COLD_ATTESTED}: the control image without a scan: 200 signature-only, 403 attested`);
    },
    verify: async (target) => {
      // Every image once through the target: checks them all (a denial fails here), and warms the registry.
      await sequentialPulls({ baseUrl: target.baseUrl, images: [...primers, ...cold] });
    },
    beforeRun: async (target, env) => {
      const proxy = kindOf[target.name] !== undefined;
      if (proxy) await restart(env, target.name);
      await sequentialPulls({ baseUrl: target.baseUrl, images: primers });
      if (proxy) {
        await env.redis.flushall();
        expect((await env.redisVerdicts()) === 0, target, "Redis not empty after FLUSHALL");
        judgementsBefore = await judgements(env, target.name);
      }
    },
    measure: (target, _durationS, env) => measureWithThreads(target, cold, env),
    checkRun: async (target, record, env) => {
      const kind = kindOf[target.name];
      if (kind === undefined) return;
      const n = cold.length;
      await checkColdPulls(target, record, env, n);
      const after = await judgements(env, target.name);
      if (after !== undefined && judgementsBefore !== undefined) {
        const judged = after - judgementsBefore;
        record.values.judgementsPerPull = judged / n;
        if (kind === "signed") expect(judged === 0, target, `${judged} worker judgements, expected none`);
        else expect(judged >= n, target, `${judged} worker judgements for ${n} cold attested pulls`);
      }
      const cpuS = record.cpuS[target.name];
      if (cpuS !== undefined && cpuS > 0) record.values.pullsPerCpuS = n / cpuS;
    },
    notes: (records) => {
      const med = (t: string, k: string) => medianOf(records, t, k);
      const diff = (k: string) => {
        const a = med(PULLGATE_ATTESTED, k);
        const b = med(PULLGATE_SIGNED, k);
        return a === undefined || b === undefined ? undefined : a - b;
      };
      /** µs per pull (the CPU columns) as ms. */
      const ms = (v: number | undefined) => (v === undefined ? undefined : v / 1000);
      const lines = [
        `The attestation check, ${PULLGATE_ATTESTED} minus ${PULLGATE_SIGNED} (medians of their runs): ` +
          `p50 ${signed(diff("p50Ms"))} ms, p99 ${signed(diff("p99Ms"))} ms; pullgate CPU ` +
          `${signed(ms(diff("cpu:proxy")))} ms per cold pull (${fmt(ms(med(PULLGATE_ATTESTED, "cpu:proxy")))} ms ` +
          `against ${fmt(ms(med(PULLGATE_SIGNED, "cpu:proxy")))} ms); registry CPU ` +
          `${signed(ms(diff("cpu:registry")))} ms per cold pull; ${signed(diff("upstreamPerPull"))} upstream ` +
          "requests per cold pull. Of the added pullgate CPU per cold pull: main thread " +
          `${signed(ms(diff("threadCpu:main")))} ms, verification worker threads ` +
          `${signed(ms(diff("threadCpu:workers")))} ms, V8 platform threads (GC, compiler) ` +
          `${signed(ms(diff("threadCpu:v8")))} ms (from /proc/<pid>/task/<tid>/stat around each run).`,
        "",
        `Worker judgements per cold pull under the attested policy: ${fmt(med(PULLGATE_ATTESTED, "judgementsPerPull"))}. ` +
          "The lookup judges each format's evidence as it arrives (an early admit for the first that verifies " +
          "alone), and none does here: the `.sig` alone lacks the attestations, the scan bundle and the `.att` " +
          "alone have no signature. So the `.sig`, the referrers' bundle and the `.att` are each judged alone " +
          "(the `.att` with its keyless verification), then everything together (the keyless verification again). " +
          "`npm run bench:attestations` measures these judgements' CPU.",
      ];
      if (breakdown) {
        const b = breakdown;
        const kinds = [
          ...new Set([...b.signed.requests, ...b.attested.requests].map((r) => `${r.request} ${r.status}`)),
        ];
        const of = (kind: PolicyKind, key: string) =>
          b[kind].requests.find((r) => `${r.request} ${r.status}` === key)?.perPull ?? 0;
        lines.push(
          "",
          `Upstream requests per cold pull, counted from the access log of a second docker-registry on the same ` +
            `storage (log on only there), in front of which a fresh pullgate under each policy (Redis flushed) ` +
            `pulled the same ${b.attested.pulls} images once each, HEAD by tag + GET by digest, one at a time:`,
          "",
          "| request pullgate → registry | status | signature-only | attested |",
          "|---|---:|---:|---:|",
          ...kinds.map((key) => {
            const [request, status] = [
              key.slice(0, key.lastIndexOf(" ")),
              key.slice(key.lastIndexOf(" ") + 1),
            ];
            return `| ${request} | ${status} | ${of("signed", key).toFixed(2)} | ${of("attested", key).toFixed(2)} |`;
          }),
          `| total | | ${b.signed.total.toFixed(2)} | ${b.attested.total.toFixed(2)} |`,
        );
      }
      return lines;
    },
    teardown: async (env) => {
      for (const t of targets) {
        const proxy = proxies[t.name];
        if (proxy) await env.stop(proxy);
        delete proxies[t.name];
      }
    },
  };
}
