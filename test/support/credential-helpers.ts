import { chmod, mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runOk } from "../../src/local/index.ts";

/**
 * Logins that change, for tests: a Kubernetes Secret volume as the kubelet writes it, a Docker
 * credential helper of the test's own, and a registry's htpasswd file rewritten in place.
 */

/**
 * A Secret volume in the kubelet's layout (its atomic writer): the files live in a timestamped
 * directory, `..data` links to it, and each key is a link `<key> -> ..data/<key>`. update() writes a
 * new directory and renames a fresh `..data_tmp` link over `..data`, then removes the old directory,
 * as the kubelet does on rotation.
 */
export async function createKubeletSecret(
  dir: string,
  files: Record<string, string>,
): Promise<{ path: (key: string) => string; update: (files: Record<string, string>) => Promise<void> }> {
  await mkdir(dir, { recursive: true });
  let version = 0;
  let current: string | undefined;
  const update = async (next: Record<string, string>) => {
    const name = `..2026_01_01_00_00_00.${String(++version).padStart(9, "0")}`;
    await mkdir(join(dir, name));
    for (const [key, value] of Object.entries(next)) await writeFile(join(dir, name, key), value);
    await symlink(name, join(dir, "..data_tmp"));
    await rename(join(dir, "..data_tmp"), join(dir, "..data"));
    if (current) await rm(join(dir, current), { recursive: true, force: true });
    current = name;
  };
  await update(files);
  for (const key of Object.keys(files)) await symlink(join("..data", key), join(dir, key));
  return { path: (key) => join(dir, key), update };
}

/**
 * `docker-credential-<name>` in `binDir`, speaking the credential-helper protocol from files in
 * `stateDir`: `get` answers `{"ServerURL":<stdin>,"Username":<username>,"Secret":<password>}`, and
 * appends the server URL it was asked about to `runs` (one line a run). With a file `fail` present
 * it exits 1 saying why on stderr, as a helper whose cloud login expired does.
 */
export async function writeTestCredentialHelper(
  binDir: string,
  name: string,
  stateDir: string,
): Promise<{
  setLogin: (username: string, password: string) => Promise<void>;
  setFailing: (failing: boolean) => Promise<void>;
  runs: () => Promise<string[]>;
}> {
  await mkdir(binDir, { recursive: true });
  await mkdir(stateDir, { recursive: true });
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const state = (file: string) => q(join(stateDir, file));
  const script = `#!/bin/sh
[ "$1" = get ] || { echo "unsupported: $1" >&2; exit 2; }
read -r server
echo "$server" >> ${state("runs")}
if [ -e ${state("fail")} ]; then echo "${name}: the cloud login expired, run the login again" >&2; exit 1; fi
printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$server" "$(cat ${state("username")})" "$(cat ${state("password")})"
`;
  const path = join(binDir, `docker-credential-${name}`);
  await writeFile(path, script);
  await chmod(path, 0o755);
  await writeFile(join(stateDir, "runs"), "");
  return {
    setLogin: async (username, password) => {
      await writeFile(join(stateDir, "username"), username);
      await writeFile(join(stateDir, "password"), password);
    },
    setFailing: async (failing) => {
      if (failing) await writeFile(join(stateDir, "fail"), "");
      else await rm(join(stateDir, "fail"), { force: true });
    },
    runs: async () => (await readFile(join(stateDir, "runs"), "utf8")).split("\n").filter(Boolean),
  };
}

/**
 * Rewrites a docker-registry's htpasswd file (the path its config names) with one bcrypt user.
 * distribution 2.8 re-reads the file when its mtime changes (checked on each request: verified with
 * 2.8.2), so the old password is refused from the next request on.
 */
export async function rotateRegistryPassword(
  configFile: string,
  username: string,
  password: string,
): Promise<void> {
  const config = JSON.parse(await readFile(configFile, "utf8")) as {
    auth?: { htpasswd?: { path?: string } };
  };
  const path = config.auth?.htpasswd?.path;
  if (!path) throw new Error(`${configFile} has no auth.htpasswd.path`);
  const { stdout } = await runOk("htpasswd", ["-Bbn", username, password]);
  await writeFile(`${path}.tmp`, `${stdout.trim()}\n`);
  await rename(`${path}.tmp`, path);
}
