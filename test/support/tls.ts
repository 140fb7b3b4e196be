import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runOk } from "../../src/local/index.ts";

/**
 * A throwaway certificate authority for TLS tests, made with the openssl CLI (Debian's openssl;
 * scripts/install-test-deps.sh installs it): ECDSA P-256, two days of validity.
 */
export interface TestCa {
  dir: string;
  caCertPath: string;
  caKeyPath: string;
}

export interface IssuedCert {
  certPath: string;
  keyPath: string;
}

export async function createTestCa(dir: string): Promise<TestCa> {
  const caCertPath = join(dir, "ca.pem");
  const caKeyPath = join(dir, "ca.key");
  await runOk("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    caKeyPath,
    "-out",
    caCertPath,
    "-days",
    "2",
    "-subj",
    "/CN=pullgate test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { dir, caCertPath, caKeyPath };
}

/**
 * A server certificate for `sans` (e.g. ["IP:127.0.0.1", "DNS:localhost"]) signed by the CA. `clientAuth` also
 * allows it as a client certificate (a Redis Cluster node presents its certificate on the cluster bus, which
 * always asks for one).
 */
export async function issueServerCert(
  ca: TestCa,
  name: string,
  sans: string[],
  opts: { clientAuth?: boolean } = {},
): Promise<IssuedCert> {
  const keyPath = join(ca.dir, `${name}.key`);
  const csrPath = join(ca.dir, `${name}.csr`);
  const certPath = join(ca.dir, `${name}.pem`);
  const extPath = join(ca.dir, `${name}.ext`);
  await runOk("openssl", [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    csrPath,
    "-subj",
    `/CN=${name}`,
  ]);
  const usage = opts.clientAuth ? "serverAuth,clientAuth" : "serverAuth";
  await writeFile(extPath, `subjectAltName=${sans.join(",")}\nextendedKeyUsage=${usage}\n`);
  await runOk("openssl", [
    "x509",
    "-req",
    "-in",
    csrPath,
    "-CA",
    ca.caCertPath,
    "-CAkey",
    ca.caKeyPath,
    "-CAcreateserial",
    "-out",
    certPath,
    "-days",
    "2",
    "-extfile",
    extPath,
  ]);
  return { certPath, keyPath };
}
