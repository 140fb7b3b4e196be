import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { validate as lintDockerfile } from "dockerfile-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { type Config, ConfigError, clientAuthProblems, parseConfig } from "../src/config/index.ts";
import { runOk } from "../src/local/index.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { createTestCa, issueServerCert } from "./support/tls.ts";

// deploy/ cannot rot: the kustomize base and every overlay are rendered with `kubectl kustomize` (no
// cluster needed) and their pullgate.yaml is loaded the way pullgate loads it, from the files the pod
// would see; compose.yaml and the Dockerfile are checked against the repository and the config format.

const ROOT = resolve(import.meta.dirname, "..");
const DEPLOY = join(ROOT, "deploy");
const KUSTOMIZE_DIR = join(DEPLOY, "kubernetes");
/** kubectl with its built-in kustomize; scripts/install-test-deps.sh installs it. */
const KUBECTL = process.env.PULLGATE_TEST_KUBECTL || "kubectl";

// ---------------------------------------------------------------------------------------------------
// The parts of the Kubernetes objects the checks read.

type Labels = Record<string, string>;
interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: unknown[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Labels };
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  fsGroup?: number;
  privileged?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
interface Probe {
  httpGet?: { path: string; port: number | string; scheme?: string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  timeoutSeconds?: number;
}
interface KeyToPath {
  key: string;
  path: string;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
interface VolumeSource {
  configMap?: { name: string; items?: KeyToPath[] };
  secret?: { name?: string; secretName?: string; items?: KeyToPath[]; optional?: boolean };
}
interface Volume extends VolumeSource {
  name: string;
  projected?: { sources: VolumeSource[] };
  emptyDir?: object;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: SecurityContext;
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  topologySpreadConstraints?: { topologyKey: string; maxSkew: number; labelSelector: LabelSelector }[];
}
interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector: LabelSelector;
    template: { metadata: { labels: Labels }; spec: PodSpec };
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}
interface Service extends K8sObject {
  spec: {
    type?: string;
    selector: Labels;
    ports: { name?: string; port: number; targetPort?: number | string }[];
  };
}
interface PodDisruptionBudget extends K8sObject {
  spec: { selector: LabelSelector; minAvailable?: number | string; maxUnavailable?: number | string };
}
interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface NetworkPolicyRule {
  from?: NetworkPolicyPeer[];
  to?: NetworkPolicyPeer[];
  ports?: { port?: number | string; protocol?: string }[];
}
interface NetworkPolicy extends K8sObject {
  spec: {
    podSelector: LabelSelector;
    policyTypes?: string[];
    ingress?: NetworkPolicyRule[];
    egress?: NetworkPolicyRule[];
  };
}
interface DataObject extends K8sObject {
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

function selects(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (!selector) return false;
  expect(selector.matchExpressions ?? [], "matchExpressions are not checked here").toEqual([]);
  const want = Object.entries(selector.matchLabels ?? {});
  return want.length > 0 && want.every(([k, v]) => labels[k] === v);
}

function selectsMap(selector: Labels, labels: Labels): boolean {
  return selects({ matchLabels: selector }, labels);
}

function portOf(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function only<T extends K8sObject>(objects: readonly K8sObject[], kind: string, name?: string): T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(
    found.map((o) => o.metadata.name),
    `exactly one ${kind}${name ? ` ${name}` : ""}`,
  ).toHaveLength(1);
  return found[0] as T;
}

function ofKind<T extends K8sObject>(objects: readonly K8sObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}

/** Directive → arguments of a redis.conf (comments and blank lines skipped). */
function parseRedisConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) continue;
    const [directive = "", ...args] = t.split(/\s+/);
    out.set(directive.toLowerCase(), args.join(" "));
  }
  return out;
}

/** Kubernetes' `$(VAR)` references in command, args and env values. */
const VAR_REF = /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g;

/** An `env` entry's value as the kubelet sets it: a Secret's key, or a value with earlier variables substituted. */
function envValue(
  e: NonNullable<Container["env"]>[number],
  env: NodeJS.ProcessEnv,
  secrets: Record<string, Record<string, string>>,
): string | undefined {
  const ref = e.valueFrom?.secretKeyRef;
  if (ref) {
    const value = secrets[ref.name]?.[ref.key];
    expect(value, `Secret ${ref.name} is documented with the key ${ref.key}`).toBeDefined();
    return value;
  }
  return e.value?.replace(VAR_REF, (whole, name: string) => env[name] ?? whole);
}

/** Loads a config the way `pullgate serve --check` does: the file's rules, the trusted keys among them. */
function loadPullgateConfig(text: string, source: string, baseDir: string, env: NodeJS.ProcessEnv): Config {
  let config: Config;
  try {
    config = parseConfig(text, { source, baseDir, env });
  } catch (err) {
    if (err instanceof ConfigError) expect(err.problems, source).toEqual([]);
    throw err;
  }
  // Upstream credentials need client authentication (or clientAuth.open: true said explicitly).
  expect(clientAuthProblems(config), `${source}: client authentication`).toEqual([]);
  return config;
}

// ---------------------------------------------------------------------------------------------------
// Kubernetes

interface Target {
  name: string;
  dir: string;
  /** The Secret template that documents pullgate-secrets for this target. */
  secretTemplate: string;
}

const overlaysDir = join(KUSTOMIZE_DIR, "overlays");
/** The template of the Secret pullgate-redis (Redis's password, and pullgate's URL with it). */
const REDIS_SECRET_TEMPLATE = join(KUSTOMIZE_DIR, "base/redis-secret.example.yaml");
const TARGETS: Target[] = [
  {
    name: "base",
    dir: join(KUSTOMIZE_DIR, "base"),
    secretTemplate: join(KUSTOMIZE_DIR, "base/secret.example.yaml"),
  },
  ...readdirSync(overlaysDir)
    .filter((d) => statSync(join(overlaysDir, d)).isDirectory())
    .sort()
    .map((d) => {
      const own = join(overlaysDir, d, "secret.example.yaml");
      return {
        name: `overlays/${d}`,
        dir: join(overlaysDir, d),
        secretTemplate: existsSync(own) ? own : join(KUSTOMIZE_DIR, "base/secret.example.yaml"),
      };
    }),
];

let work: string;
/** A test-CA certificate standing in for the Secret pullgate-tls. */
let tlsSecret: Record<string, string>;
/** An `htpasswd -B` file standing in for the Secret pullgate-htpasswd (client authentication). */
let htpasswdSecret: Record<string, string>;
/** The base's stand-in for the node CIDR allowed to reach the proxy port (RFC 5737, matches no node). */
const NODE_CIDR_PLACEHOLDER = "192.0.2.0/24";

beforeAll(async () => {
  work = await makeTempDir("deploy-test");
  const ca = await createTestCa(work);
  const cert = await issueServerCert(ca, "pullgate", ["DNS:pullgate"]);
  tlsSecret = {
    "tls.crt": await readFile(cert.certPath, "utf8"),
    "tls.key": await readFile(cert.keyPath, "utf8"),
  };
  htpasswdSecret = { htpasswd: (await runOk("htpasswd", ["-Bbn", "nodes", "test-only-pw"])).stdout };
});
afterAll(async () => {
  if (work) await removeDir(work);
});

it("finds the base and at least one overlay", () => {
  expect(TARGETS.map((t) => t.name)).toContain("base");
  expect(TARGETS.length).toBeGreaterThanOrEqual(2);
});

describe.each(TARGETS)("kubernetes $name", (target) => {
  let objects: K8sObject[];
  let deployment: Workload;
  let pod: PodSpec;
  let podLabels: Labels;
  let container: Container;
  let redis: Workload;
  let redisPod: PodSpec;
  let redisLabels: Labels;
  let secretTemplate: DataObject;
  let redisSecretTemplate: DataObject;
  /** Every Secret the pods may name, by name: key → value (templates and test stand-ins). */
  let secrets: Record<string, Record<string, string>>;
  /** The environment of the pullgate container, as the kubelet would set it. */
  let env: NodeJS.ProcessEnv;
  /** The configuration the pullgate container would load, from the files its volumes would hold. */
  let config: Config;
  /** Where each file of the materialized volumes came from, by absolute path in the temp root. */
  let origins: Map<string, string>;
  let root: string;
  /** The config file's path under `root`. */
  let configFile: string;

  beforeAll(async () => {
    const { stdout } = await runOk(KUBECTL, ["kustomize", target.dir], { timeoutMs: 30_000 });
    objects = parseAllDocuments(stdout)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null);
    deployment = only<Workload>(objects, "Deployment", "pullgate");
    pod = deployment.spec.template.spec;
    podLabels = deployment.spec.template.metadata.labels;
    container = pod.containers.find((c) => c.name === "pullgate") as Container;
    redis = only<Workload>(objects, "StatefulSet");
    redisPod = redis.spec.template.spec;
    redisLabels = redis.spec.template.metadata.labels;
    secretTemplate = parseYaml(await readFile(target.secretTemplate, "utf8")) as DataObject;
    redisSecretTemplate = parseYaml(await readFile(REDIS_SECRET_TEMPLATE, "utf8")) as DataObject;

    // Lay out every volume of the pullgate container under a temp root, as the kubelet would.
    root = join(work, target.name.replace(/\//g, "-"));
    origins = new Map();
    secrets = {
      "pullgate-tls": tlsSecret,
      "pullgate-htpasswd": htpasswdSecret,
      [secretTemplate.metadata.name]: secretTemplate.stringData ?? {},
      [redisSecretTemplate.metadata.name]: redisSecretTemplate.stringData ?? {},
    };
    const writeSource = async (dir: string, src: VolumeSource) => {
      let data: Record<string, string> | undefined;
      let items: KeyToPath[] | undefined;
      let origin: string;
      if (src.configMap) {
        const name = src.configMap.name;
        const cm = ofKind<DataObject>(objects, "ConfigMap").find((c) => c.metadata.name === name);
        expect(cm, `ConfigMap ${name} is rendered`).toBeDefined();
        data = cm?.data ?? {};
        items = src.configMap.items;
        origin = `configMap:${name}`;
      } else if (src.secret) {
        const name = (src.secret.name ?? src.secret.secretName) as string;
        data = secrets[name];
        expect(data, `Secret ${name} is documented`).toBeDefined();
        items = src.secret.items;
        origin = `secret:${name}`;
      } else {
        return;
      }
      for (const { key, path } of items ?? Object.keys(data ?? {}).map((k) => ({ key: k, path: k }))) {
        const value = data?.[key];
        expect(value, `${origin} has the key ${key}`).toBeDefined();
        const file = join(dir, path);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, value ?? "");
        origins.set(file, origin);
      }
    };
    for (const mount of container.volumeMounts ?? []) {
      expect(mount.subPath, "subPath mounts never see updates").toBeUndefined();
      const volume = pod.volumes?.find((v) => v.name === mount.name);
      expect(volume, `volume ${mount.name}`).toBeDefined();
      const dir = join(root, mount.mountPath);
      await mkdir(dir, { recursive: true });
      for (const src of volume?.projected?.sources ?? [volume as VolumeSource]) await writeSource(dir, src);
    }
    env = {};
    for (const from of container.envFrom ?? []) {
      const name = from.secretRef?.name;
      expect(name, "envFrom names a Secret").toBeDefined();
      Object.assign(env, secrets[name as string]);
    }
    for (const e of container.env ?? []) env[e.name] = envValue(e, env, secrets);
    const configPath = env.PULLGATE_CONFIG ?? "/etc/pullgate/pullgate.yaml";
    configFile = join(root, configPath);
    expect(existsSync(configFile), `${configPath} is mounted`).toBe(true);
    config = loadPullgateConfig(
      await readFile(configFile, "utf8"),
      `${target.name}:${configPath}`,
      dirname(configFile),
      env,
    );
  });

  it("renders pullgate, Redis, the Services, the PDB and the NetworkPolicies, and no Secret", () => {
    expect(
      ofKind(objects, "Service")
        .map((s) => s.metadata.name)
        .sort(),
    ).toEqual(["pullgate", "pullgate-admin", "pullgate-redis"]);
    only(objects, "PodDisruptionBudget");
    expect(ofKind(objects, "NetworkPolicy").length).toBeGreaterThanOrEqual(2);
    // The Secret templates hold placeholders: they must never be applied as they are.
    expect(ofKind(objects, "Secret")).toEqual([]);
    expect(Object.keys(secretTemplate.stringData ?? {})).toContain("PULLGATE_ADMIN_TOKEN");
    for (const template of [target.secretTemplate, REDIS_SECRET_TEMPLATE]) {
      const data = (template === REDIS_SECRET_TEMPLATE ? redisSecretTemplate : secretTemplate).stringData;
      for (const [key, value] of Object.entries(data ?? {}))
        expect(value, `${key} in ${relative(ROOT, template)} is a placeholder`).toMatch(/REPLACE/);
    }
  });

  it("loads as a valid pullgate configuration from the mounted files", () => {
    expect(config.listen.host).toBe("0.0.0.0");
    expect(config.admin.listen.host).toBe("0.0.0.0");
    expect(config.admin.token, "PULLGATE_ADMIN_TOKEN from the Secret").toBeDefined();
    // TLS from the mounted Secret (parseConfig has read and paired both files).
    expect(config.tls).toBeDefined();
    expect(origins.get(config.tls?.certPath ?? "")).toBe("secret:pullgate-tls");
    expect(origins.get(config.tls?.keyPath ?? "")).toBe("secret:pullgate-tls");
    // Every trusted key file comes from a ConfigMap, not from the image.
    const raw = parseYaml(readFileSync(configFile, "utf8")) as {
      projects?: Record<string, { keys?: { path?: string }[] }>;
      defaults?: { keys?: { path?: string }[] };
    };
    const keyPaths = [
      ...Object.values(raw.projects ?? {}).flatMap((p) => p.keys ?? []),
      ...(raw.defaults?.keys ?? []),
    ].flatMap((k) => (k.path === undefined ? [] : [k.path]));
    for (const path of keyPaths)
      expect(origins.get(resolve(dirname(configFile), path)), path).toMatch(/^configMap:/);
    // The htpasswd file of client authentication is a Secret, never a ConfigMap or the image.
    if (config.clientAuth.htpasswd)
      expect(origins.get(config.clientAuth.htpasswd.path), "clientAuth.htpasswd").toMatch(/^secret:/);
    if (config.upstreams.some((u) => u.credentials))
      expect(
        config.clientAuth.htpasswd ?? config.clientAuth.jwt,
        "upstream credentials: clients authenticate",
      ).toBeDefined();
  });

  it("runs at least two replicas spread over nodes and zones", () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(selects(deployment.spec.selector, podLabels)).toBe(true);
    const spread = pod.topologySpreadConstraints ?? [];
    for (const key of ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]) {
      const c = spread.find((s) => s.topologyKey === key);
      expect(c, `spread over ${key}`).toBeDefined();
      expect(selects(c?.labelSelector, podLabels)).toBe(true);
    }
  });

  it("probes /healthz and /readyz on the admin port, and serves the proxy port", () => {
    expect(portOf(container, "proxy") ?? container.ports?.[0]?.containerPort).toBe(config.listen.port);
    const admin = config.admin.listen.port;
    expect(container.livenessProbe?.httpGet?.path).toBe("/healthz");
    expect(portOf(container, container.livenessProbe?.httpGet?.port)).toBe(admin);
    expect(container.readinessProbe?.httpGet?.path).toBe("/readyz");
    expect(portOf(container, container.readinessProbe?.httpGet?.port)).toBe(admin);
    // /readyz waits up to 2 s for the default upstream.
    expect(container.readinessProbe?.timeoutSeconds ?? 1).toBeGreaterThan(2);
    if (container.startupProbe) {
      expect(container.startupProbe.httpGet?.path).toBe("/healthz");
      expect(portOf(container, container.startupProbe.httpGet?.port)).toBe(admin);
    }
    for (const p of [container.livenessProbe, container.readinessProbe, container.startupProbe])
      expect(p?.httpGet?.scheme ?? "HTTP", "the admin listener is plain HTTP").toBe("HTTP");
  });

  it("sleeps in preStop, then drains within the grace period", () => {
    const preStop = container.lifecycle?.preStop;
    const sleepSeconds =
      preStop?.sleep?.seconds ??
      (preStop?.exec?.command[0] === "sleep" ? Number(preStop.exec.command[1]) : Number.NaN);
    expect(sleepSeconds).toBeGreaterThanOrEqual(5);
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    expect(grace).toBeGreaterThan(sleepSeconds + config.shutdown.drainTimeoutMs / 1000);
  });

  it("hardens both pods: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp", () => {
    for (const [what, spec] of [
      ["pullgate", pod],
      ["redis", redisPod],
    ] as const) {
      expect(spec.automountServiceAccountToken, `${what}: no service account token`).toBe(false);
      expect(spec.hostNetwork ?? false).toBe(false);
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        const at = `${what}/${c.name}`;
        const sc = { ...spec.securityContext, ...c.securityContext };
        expect(sc.runAsNonRoot, at).toBe(true);
        expect(sc.runAsUser, `${at}: a numeric non-root user`).toBeGreaterThan(0);
        expect(sc.readOnlyRootFilesystem, at).toBe(true);
        expect(sc.allowPrivilegeEscalation, at).toBe(false);
        expect(sc.privileged ?? false, at).toBe(false);
        expect(c.securityContext?.capabilities?.drop, at).toContain("ALL");
        expect(c.securityContext?.capabilities?.add ?? [], at).toEqual([]);
        expect(sc.seccompProfile?.type, at).toBe("RuntimeDefault");
        expect(c.resources?.requests?.cpu, at).toBeDefined();
        expect(c.resources?.requests?.memory, at).toBeDefined();
        expect(c.resources?.limits?.memory, at).toBeDefined();
        expect(c.image, `${at}: a pinned image`).toMatch(/(:[\w.-]+|@sha256:[0-9a-f]{64})$/);
        expect(c.image, at).not.toMatch(/:latest$/);
      }
    }
  });

  it("has a PodDisruptionBudget over pullgate's pods that still lets a node drain", () => {
    const pdb = only<PodDisruptionBudget>(objects, "PodDisruptionBudget");
    expect(pdb.apiVersion).toBe("policy/v1");
    expect(selects(pdb.spec.selector, podLabels)).toBe(true);
    expect(selects(pdb.spec.selector, redisLabels)).toBe(false);
    const replicas = deployment.spec.replicas ?? 1;
    if (pdb.spec.maxUnavailable !== undefined)
      expect(Number(pdb.spec.maxUnavailable)).toBeGreaterThanOrEqual(1);
    else expect(Number(pdb.spec.minAvailable)).toBeLessThan(replicas);
  });

  it("exposes the proxy in the Service and the admin port only in a cluster-internal one", () => {
    const proxy = only<Service>(objects, "Service", "pullgate");
    expect(selectsMap(proxy.spec.selector, podLabels)).toBe(true);
    expect(proxy.spec.ports.map((p) => portOf(container, p.targetPort ?? p.port))).toEqual([
      config.listen.port,
    ]);
    const admin = only<Service>(objects, "Service", "pullgate-admin");
    expect(admin.spec.type ?? "ClusterIP").toBe("ClusterIP");
    expect(selectsMap(admin.spec.selector, podLabels)).toBe(true);
    expect(admin.spec.ports.map((p) => portOf(container, p.targetPort ?? p.port))).toEqual([
      config.admin.listen.port,
    ]);
    for (const s of ofKind<Service>(objects, "Service"))
      expect(
        selectsMap(s.spec.selector, podLabels) && selectsMap(s.spec.selector, redisLabels),
        s.metadata.name,
      ).toBe(false);
  });

  it("points pullgate at the in-cluster Redis, which persists with an append-only file", () => {
    const service = only<Service>(objects, "Service", "pullgate-redis");
    expect(selectsMap(service.spec.selector, redisLabels)).toBe(true);
    const url = new URL(config.redis?.url.reveal() ?? "");
    expect(url.protocol).toBe("redis:");
    expect(
      url.hostname === service.metadata.name || url.hostname.startsWith(`${service.metadata.name}.`),
    ).toBe(true);
    expect(Number(url.port || 6379)).toBe(service.spec.ports[0]?.port);

    const c = redisPod.containers[0] as Container;
    const confPath = [...(c.command ?? []), ...(c.args ?? [])].find((a) => a.endsWith(".conf"));
    expect(confPath, "redis-server is started with a config file").toBeDefined();
    const mount = c.volumeMounts?.find((m) => confPath?.startsWith(`${m.mountPath}/`));
    const volume = redisPod.volumes?.find((v) => v.name === mount?.name);
    const cm = ofKind<DataObject>(objects, "ConfigMap").find(
      (m) => m.metadata.name === volume?.configMap?.name,
    );
    const conf = parseRedisConf(cm?.data?.[basename(confPath ?? "")] ?? "");
    expect(conf.get("appendonly")).toBe("yes");
    // Runtime policies have no TTL: only keys with a TTL (verdicts) may be evicted.
    expect(conf.get("maxmemory-policy") ?? "noeviction").toMatch(/^(noeviction|volatile-)/);
    // The data directory is a persistent volume.
    const claims = (redis.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name);
    const dataMount = c.volumeMounts?.find((m) => m.mountPath === conf.get("dir"));
    expect(dataMount && claims.includes(dataMount.name), `dir ${conf.get("dir")} is on a volume claim`).toBe(
      true,
    );
    expect(portOf(c, c.ports?.[0]?.containerPort)).toBe(Number(conf.get("port") ?? 6379));
  });

  it("protects Redis with a password from a Secret and protected mode; pullgate's Redis URL and HMAC key come from Secrets", () => {
    const c = redisPod.containers[0] as Container;
    const redisEnv: NodeJS.ProcessEnv = {};
    expect(
      c.envFrom ?? [],
      "Redis gets no Secret wholesale (pullgate's HMAC key stays with pullgate)",
    ).toEqual([]);
    for (const e of c.env ?? []) redisEnv[e.name] = envValue(e, redisEnv, secrets);
    // requirepass on the command line, as a $(VAR) from a Secret: never written in a manifest or ConfigMap.
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    const at = argv.indexOf("--requirepass");
    expect(at, "redis-server --requirepass").toBeGreaterThan(0);
    const passwordVar = /^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(argv[at + 1] ?? "")?.[1];
    expect(passwordVar, "the password is a $(VAR) reference").toBeDefined();
    const passwordRef = c.env?.find((e) => e.name === passwordVar)?.valueFrom?.secretKeyRef;
    expect(passwordRef, `${passwordVar} comes from a Secret`).toBeDefined();
    const password = redisEnv[passwordVar as string] ?? "";
    expect(password.length, "a password").toBeGreaterThan(0);

    const confPath = argv.find((a) => a.endsWith(".conf"));
    const mount = c.volumeMounts?.find((m) => confPath?.startsWith(`${m.mountPath}/`));
    const volume = redisPod.volumes?.find((v) => v.name === mount?.name);
    const cm = ofKind<DataObject>(objects, "ConfigMap").find(
      (m) => m.metadata.name === volume?.configMap?.name,
    );
    const conf = parseRedisConf(cm?.data?.[basename(confPath ?? "")] ?? "");
    expect(conf.get("protected-mode")).toBe("yes");
    expect(conf.has("requirepass"), "no password in the ConfigMap").toBe(false);
    // A redis-cli probe must authenticate, or Redis never turns ready.
    const probe = [c.readinessProbe, c.livenessProbe, c.startupProbe]
      .flatMap((p) => p?.exec?.command ?? [])
      .join(" ");
    if (probe.includes("redis-cli")) expect(redisEnv.REDISCLI_AUTH, "redis-cli's password").toBe(password);

    // pullgate connects with that password, from an environment variable set from a Secret.
    const raw = parseYaml(readFileSync(configFile, "utf8")) as {
      redis?: { url?: string; urlEnv?: string; hmacKeyEnv?: string; hmacKeyFile?: string };
    };
    expect(raw.redis?.url, "no password in the ConfigMap: redis.urlEnv").toBeUndefined();
    const urlEnv = raw.redis?.urlEnv as string;
    const fromSecret = (name: string) =>
      container.env?.some((e) => e.name === name && e.valueFrom?.secretKeyRef !== undefined) ||
      (container.envFrom ?? []).some((f) => f.secretRef && secrets[f.secretRef.name]?.[name] !== undefined);
    expect(fromSecret(urlEnv), `${urlEnv} comes from a Secret`).toBe(true);
    expect(decodeURIComponent(new URL(config.redis?.url.reveal() ?? "").password)).toBe(password);

    // The HMAC key that authenticates pullgate's entries: from a Secret the Redis pod does not get.
    const hmacKeyEnv = raw.redis?.hmacKeyEnv as string;
    expect(hmacKeyEnv, "redis.hmacKeyEnv").toBeDefined();
    expect(fromSecret(hmacKeyEnv), `${hmacKeyEnv} comes from a Secret`).toBe(true);
    expect(config.redis?.hmacKey.reveal().length).toBeGreaterThanOrEqual(32);
    expect(Object.keys(redisEnv)).not.toContain(hmacKeyEnv);
    expect(Object.values(redisEnv)).not.toContain(config.redis?.hmacKey.reveal());
  });

  it("has NetworkPolicies for the proxy port, the admin port and Redis", () => {
    const policies = ofKind<NetworkPolicy>(objects, "NetworkPolicy");
    const ports = (r: NetworkPolicyRule) => (r.ports ?? []).map((p) => portOf(container, p.port));
    const proxyPort = config.listen.port;
    const adminPort = config.admin.listen.port;
    const redisPort = Number(new URL(config.redis?.url.reveal() ?? "").port || 6379);

    const forPullgate = policies.filter((p) => selects(p.spec.podSelector, podLabels));
    expect(forPullgate.map((p) => p.metadata.name)).toHaveLength(1);
    const np = forPullgate[0] as NetworkPolicy;
    expect(np.spec.policyTypes).toEqual(expect.arrayContaining(["Ingress", "Egress"]));
    const ingress = np.spec.ingress ?? [];
    expect(
      ingress.some((r) => ports(r).includes(proxyPort)),
      "the proxy port is open",
    ).toBe(true);
    // ...but not to everyone: pullgate pulls with its own logins. Nodes by CIDR (the overlay sets it),
    // in-cluster clients by a namespace label; never every address or every namespace.
    const proxyCidrs: string[] = [];
    for (const r of ingress.filter((r) => ports(r).includes(proxyPort))) {
      expect(r.from?.length, "the proxy port has a source list").toBeGreaterThan(0);
      for (const peer of r.from ?? []) {
        if (peer.ipBlock) {
          expect(peer.ipBlock.cidr, "proxy port: not every address").not.toMatch(/\/0$/);
          proxyCidrs.push(peer.ipBlock.cidr);
        }
        if (peer.namespaceSelector)
          expect(
            Object.keys(peer.namespaceSelector.matchLabels ?? {}).length,
            "proxy port: namespaces by label, not all of them",
          ).toBeGreaterThan(0);
        expect(peer.ipBlock ?? peer.namespaceSelector ?? peer.podSelector, "a peer").toBeDefined();
      }
    }
    expect(proxyCidrs.length, "the nodes reach the proxy port by CIDR").toBeGreaterThan(0);
    if (target.name === "base") expect(proxyCidrs).toEqual([NODE_CIDR_PLACEHOLDER]);
    else expect(proxyCidrs, "the overlay sets its node CIDR").not.toContain(NODE_CIDR_PLACEHOLDER);
    for (const r of ingress) {
      expect(r.ports?.length, "every ingress rule names its ports").toBeGreaterThan(0);
      if (ports(r).includes(adminPort)) {
        expect(r.from?.length, "the admin port has a source list").toBeGreaterThan(0);
        for (const peer of r.from ?? []) {
          expect(peer.ipBlock, "admin port: no address ranges").toBeUndefined();
          expect(
            Object.keys(peer.namespaceSelector?.matchLabels ?? {}).length,
            "admin port: a named namespace",
          ).toBe(1);
        }
      }
    }
    expect(
      ingress.some((r) => ports(r).includes(adminPort)),
      "the admin port is reachable from monitoring",
    ).toBe(true);
    const egress = np.spec.egress ?? [];
    expect(
      egress.some(
        (r) => ports(r).includes(redisPort) && (r.to ?? []).some((p) => selects(p.podSelector, redisLabels)),
      ),
      "pullgate → Redis",
    ).toBe(true);
    expect(
      egress.some((r) => (r.ports ?? []).some((p) => p.port === 53 && p.protocol === "UDP")),
      "pullgate → DNS",
    ).toBe(true);
    expect(
      egress.some((r) => ports(r).includes(443)),
      "pullgate → upstream registries (HTTPS)",
    ).toBe(true);

    const forRedis = policies.filter((p) => selects(p.spec.podSelector, redisLabels));
    expect(forRedis).toHaveLength(1);
    const rnp = forRedis[0] as NetworkPolicy;
    expect(rnp.spec.policyTypes).toEqual(expect.arrayContaining(["Ingress", "Egress"]));
    expect(rnp.spec.ingress?.length).toBeGreaterThan(0);
    for (const r of rnp.spec.ingress ?? []) {
      expect(r.from?.length, "Redis: a source list").toBeGreaterThan(0);
      for (const peer of r.from ?? []) {
        expect(peer.namespaceSelector).toBeUndefined();
        expect(peer.ipBlock).toBeUndefined();
        expect(selects(peer.podSelector, podLabels), "only pullgate's pods reach Redis").toBe(true);
      }
    }
    expect(rnp.spec.egress ?? [], "Redis opens no connection").toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Docker Compose (evaluation on one machine; no Docker engine here, so the file is checked as data)

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  ports?: (string | { host_ip?: string; published?: string | number; target: number })[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
}

describe("deploy/compose.yaml", () => {
  const compose = parseYaml(readFileSync(join(DEPLOY, "compose.yaml"), "utf8")) as {
    services: Record<string, ComposeService>;
    volumes?: Record<string, unknown>;
  };
  const services = compose.services;
  const svc = (name: string) => services[name] as ComposeService;
  /** host path (relative to deploy/) of a bind mount at `target`, or undefined. */
  const bindSource = (s: ComposeService, target: string) =>
    s.volumes
      ?.map((v) => v.split(":"))
      .find(([src, dst]) => dst === target && /^\.\.?\//.test(src ?? ""))?.[0];
  /** The shell environment `docker compose up` runs with in these checks (compose.yaml's instructions). */
  const SHELL: Record<string, string> = {
    PULLGATE_ADMIN_TOKEN: "test-admin-token",
    PULLGATE_REDIS_PASSWORD: "0123456789abcdef-test-redis-password",
    PULLGATE_REDIS_HMAC_KEY: "0123456789abcdef0123456789abcdef-test-hmac-key",
  };
  /** Compose's `${VAR}`, `${VAR:?message}` and `${VAR:-default}` interpolation from SHELL. */
  const interpolate = (text: string) =>
    text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[?-][^}]*)?\}/g, (_, name: string) => {
      expect(SHELL[name], `${name} is set by the instructions`).toBeDefined();
      return SHELL[name] ?? "";
    });
  const environmentOf = (s: ComposeService): NodeJS.ProcessEnv =>
    Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
  /** `${VAR:?…}`: compose refuses to start without VAR (no default, nothing written in the file). */
  const REQUIRED_VAR = /^\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}$/;
  const pullgateConfigFile = () => {
    const pullgate = svc("pullgate");
    const configPath = pullgate.environment?.PULLGATE_CONFIG ?? "/etc/pullgate/pullgate.yaml";
    const src = bindSource(pullgate, configPath);
    expect(src, `${configPath} is mounted`).toBeDefined();
    return join(DEPLOY, src ?? "");
  };

  it("runs pullgate, Redis and registry:2, each with a healthcheck", () => {
    expect(Object.keys(services).sort()).toEqual(["pullgate", "redis", "registry"]);
    expect(svc("registry").image).toBe("registry:2");
    for (const [name, s] of Object.entries(services))
      expect(s.healthcheck?.test.length, `${name} has a healthcheck`).toBeGreaterThan(1);
    for (const dep of ["redis", "registry"])
      expect(svc("pullgate").depends_on?.[dep]?.condition).toBe("service_healthy");
  });

  it("publishes ports on 127.0.0.1 only", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        if (typeof p === "string") expect(p, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
        else expect(p.host_ip, name).toBe("127.0.0.1");
      }
    }
  });

  it("mounts files and builds from paths that exist", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const [src = ""] = v.split(":");
        if (/^\.\.?\//.test(src)) expect(existsSync(join(DEPLOY, src)), `${name}: ${src}`).toBe(true);
        else expect(Object.keys(compose.volumes ?? {}), `${name}: named volume ${src}`).toContain(src);
      }
    }
    const build = svc("pullgate").build;
    expect(build).toBeDefined();
    expect(existsSync(join(DEPLOY, build?.context ?? "", build?.dockerfile ?? "Dockerfile"))).toBe(true);
  });

  it("gives pullgate a valid plain-HTTP configuration pointing at the compose Redis and registry", () => {
    const pullgate = svc("pullgate");
    const file = pullgateConfigFile();
    expect(pullgate.environment?.PULLGATE_ADMIN_TOKEN).toMatch(/^\$\{PULLGATE_ADMIN_TOKEN:\?/);
    const config = loadPullgateConfig(
      readFileSync(file, "utf8"),
      relative(ROOT, file),
      dirname(file),
      environmentOf(pullgate),
    );
    expect(config.tls, "evaluation is plain HTTP").toBeUndefined();
    expect(config.listen.host).toBe("0.0.0.0");
    expect(config.admin.listen.host).toBe("0.0.0.0");
    const published = (pullgate.ports ?? []).map((p) =>
      typeof p === "string" ? Number(p.split(":")[2]) : p.target,
    );
    expect(published.sort()).toEqual([config.listen.port, config.admin.listen.port].sort());
    const redisUrl = new URL(config.redis?.url.reveal() ?? "");
    expect(redisUrl.hostname).toBe("redis");
    const local = config.upstreams.find((u) => u.default);
    expect(new URL(local?.url ?? "").host).toBe("registry:5000");
  });

  it("protects Redis with a required password and protected mode; pullgate's URL carries it, its HMAC key is required", () => {
    const redis = svc("redis");
    const command = redis.command ?? [];
    const at = command.indexOf("--requirepass");
    expect(at, "redis-server --requirepass").toBeGreaterThan(0);
    const passwordVar = REQUIRED_VAR.exec(command[at + 1] ?? "")?.[1];
    expect(passwordVar, "the password is a required variable").toBeDefined();
    const password = SHELL[passwordVar as string];
    const confPath = command.find((a) => a.endsWith(".conf")) ?? "";
    const conf = parseRedisConf(readFileSync(join(DEPLOY, bindSource(redis, confPath) ?? ""), "utf8"));
    expect(conf.get("protected-mode")).toBe("yes");
    expect(conf.has("requirepass"), "no password in the file").toBe(false);
    if (redis.healthcheck?.test.join(" ").includes("redis-cli"))
      expect(environmentOf(redis).REDISCLI_AUTH, "the healthcheck's redis-cli authenticates").toBe(password);

    const pullgate = svc("pullgate");
    const file = pullgateConfigFile();
    const raw = parseYaml(readFileSync(file, "utf8")) as {
      redis?: { url?: string; urlEnv?: string; hmacKeyEnv?: string };
    };
    expect(raw.redis?.url, "the password stays out of the file: redis.urlEnv").toBeUndefined();
    const env = environmentOf(pullgate);
    const config = loadPullgateConfig(readFileSync(file, "utf8"), relative(ROOT, file), dirname(file), env);
    expect(decodeURIComponent(new URL(config.redis?.url.reveal() ?? "").password)).toBe(password);
    const hmacKeyEnv = raw.redis?.hmacKeyEnv as string;
    expect(pullgate.environment?.[hmacKeyEnv], `${hmacKeyEnv} is a required variable`).toMatch(REQUIRED_VAR);
    expect(config.redis?.hmacKey.reveal()).toBe(SHELL[hmacKeyEnv]);
    expect(Object.keys(redis.environment ?? {}), "Redis never gets the HMAC key").not.toContain(hmacKeyEnv);
    expect(Object.values(environmentOf(redis))).not.toContain(SHELL[hmacKeyEnv]);
  });

  it("persists Redis with an append-only file and hardens pullgate", () => {
    const redis = svc("redis");
    const confPath = redis.command?.find((a) => a.endsWith(".conf")) ?? "";
    const src = bindSource(redis, confPath);
    expect(src, `${confPath} is mounted`).toBeDefined();
    const conf = parseRedisConf(readFileSync(join(DEPLOY, src ?? ""), "utf8"));
    expect(conf.get("appendonly")).toBe("yes");
    expect(conf.get("maxmemory-policy") ?? "noeviction").toMatch(/^(noeviction|volatile-)/);
    const data = redis.volumes?.map((v) => v.split(":")).find(([, dst]) => dst === conf.get("dir"));
    expect(Object.keys(compose.volumes ?? {}), "the data dir is a named volume").toContain(data?.[0]);

    const pullgate = svc("pullgate");
    expect(pullgate.read_only).toBe(true);
    expect(pullgate.cap_drop).toContain("ALL");
    expect(pullgate.user).toMatch(/^[1-9]\d*(:\d+)?$/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions of a Dockerfile: comments and parser directives skipped, continuation lines joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current: Instruction | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (current === undefined && (line === "" || line.startsWith("#"))) return;
    if (current !== undefined && line.startsWith("#")) return;
    const continued = line.endsWith("\\");
    const body = continued ? line.slice(0, -1).trim() : line;
    if (current === undefined) {
      const m = /^(\S+)\s*(.*)$/.exec(body);
      current = { keyword: (m?.[1] ?? "").toUpperCase(), args: m?.[2] ?? "", line: i + 1 };
    } else {
      current.args = `${current.args} ${body}`.trim();
    }
    if (!continued) {
      out.push(current);
      current = undefined;
    }
  });
  if (current) out.push(current);
  return out;
}

function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  expect(Array.isArray(parsed), `exec form (JSON array): ${args}`).toBe(true);
  return parsed as string[];
}

describe("Dockerfile", () => {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const all = parseDockerfile(text);
  const lastFrom = all.map((i) => i.keyword).lastIndexOf("FROM");
  const final = all.slice(lastFrom);
  const get = (keyword: string) => final.filter((i) => i.keyword === keyword);
  const containerConfigFile = join(DEPLOY, "container/pullgate.yaml");
  const containerConfig = loadPullgateConfig(
    readFileSync(containerConfigFile, "utf8"),
    relative(ROOT, containerConfigFile),
    dirname(containerConfigFile),
    {},
  );

  it("passes the Dockerfile linter (dockerfile-utils)", () => {
    const problems = lintDockerfile(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it("builds on Node 24", () => {
    const froms = all.filter((i) => i.keyword === "FROM").map((i) => i.args.split(/\s+/)[0]);
    expect(froms.length).toBeGreaterThan(0);
    for (const image of froms)
      expect(image).toMatch(/^(docker\.io\/)?(library\/)?node:24([.-][\w.-]*)?(@sha256:[0-9a-f]{64})?$/);
  });

  it("copies only files that exist in the repository", () => {
    const copies = all.filter((i) => i.keyword === "COPY" || i.keyword === "ADD");
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const words = c.args.split(/\s+/);
      if (words.some((w) => w.startsWith("--from="))) continue;
      const sources = words.filter((w) => !w.startsWith("--")).slice(0, -1);
      expect(sources.length, `line ${c.line}: ${c.args}`).toBeGreaterThan(0);
      for (const s of sources) expect(existsSync(join(ROOT, s)), `line ${c.line}: ${s}`).toBe(true);
    }
  });

  it("runs `bin/pullgate.js serve` with the baked-in container configuration", () => {
    const entrypoint = get("ENTRYPOINT").at(-1);
    const cmd = get("CMD").at(-1);
    const argv = [...execForm(entrypoint?.args ?? "[]"), ...execForm(cmd?.args ?? "[]")];
    expect(argv[0]).toBe("node");
    // Node flags (the young-generation size) may come before the script.
    const script = argv.findIndex((a, i) => i > 0 && !a.startsWith("--"));
    expect(argv.slice(1, script).every((a) => /^--[a-z-]+(=\S+)?$/.test(a))).toBe(true);
    expect(argv[script]).toMatch(/(^|\/)bin\/pullgate\.js$/);
    expect(argv.slice(script + 1)).toEqual(["serve"]);
    // PULLGATE_CONFIG names the file COPY puts deploy/container/pullgate.yaml at.
    const env = get("ENV")
      .map((i) => i.args)
      .join(" ");
    const configPath = /PULLGATE_CONFIG=(\S+)/.exec(env)?.[1];
    const copy = final.find((i) => i.keyword === "COPY" && i.args.includes("deploy/container/pullgate.yaml"));
    expect(configPath).toBeDefined();
    expect(copy?.args.split(/\s+/).at(-1)).toBe(configPath);
    expect(containerConfig.listen.host).toBe("0.0.0.0");
    expect(containerConfig.admin.listen.host).toBe("0.0.0.0");
    const exposed = get("EXPOSE").flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split("/")[0])));
    expect(exposed.sort()).toEqual([containerConfig.listen.port, containerConfig.admin.listen.port].sort());
  });

  it("runs as a numeric non-root user, the one the Kubernetes manifests name", () => {
    const user = get("USER").at(-1)?.args ?? "root";
    expect(user, "numeric, so that runAsNonRoot can verify it").toMatch(/^\d+(:\d+)?$/);
    const uid = Number(user.split(":")[0]);
    expect(uid).toBeGreaterThan(0);
    const k8s = parseYaml(readFileSync(join(KUSTOMIZE_DIR, "base/deployment.yaml"), "utf8")) as Workload;
    expect(k8s.spec.template.spec.securityContext?.runAsUser).toBe(uid);
  });

  it("checks its health on the admin port's /healthz", () => {
    const healthchecks = get("HEALTHCHECK");
    expect(healthchecks).toHaveLength(1);
    const args = healthchecks[0]?.args ?? "";
    expect(args).toContain(`:${containerConfig.admin.listen.port}/healthz`);
    expect(args).toMatch(/\bCMD\s+\[/);
  });
});
