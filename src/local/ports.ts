import { readdir, readFile, readlink } from "node:fs/promises";
import { createServer, Socket } from "node:net";

/**
 * TCP ports on 127.0.0.1: one to bind, whether one is taken, and whether a given process holds it.
 */

/**
 * A port on 127.0.0.1 that was free a moment ago: the kernel picks it (listen on port 0) and the listener
 * is closed right away. Another process may grab it before the caller binds it; the kernel hands out
 * ephemeral ports round-robin, so this is rare in practice (a server that logs what it bound, or
 * listensOn(), tells).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error(`unexpected listen address: ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function isPortOpen(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (open: boolean): void => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.connect({ host: "127.0.0.1", port });
  });
}

/** True when 127.0.0.1:port can be bound right now (nobody listens on it). */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * True when process `pid` itself holds a socket listening on 127.0.0.1:`port` (Linux, from /proc), so a
 * readiness probe that succeeds is answered by that process, not by someone else who grabbed the port.
 */
export async function listensOn(pid: number, port: number): Promise<boolean> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set<string>();
  for (const line of (await readFile("/proc/net/tcp", "utf8")).split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    if (cols[1] === local && cols[3] === "0A" && cols[9] !== undefined) inodes.add(cols[9]);
  }
  if (inodes.size === 0) return false;
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`));
      if (m && inodes.has(m[1] as string)) return true;
    } catch {
      // fd closed meanwhile
    }
  }
  return false;
}
