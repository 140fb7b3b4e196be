import { type RedisServer, type RedisServerTls, startRedisServer } from "../../src/local/index.ts";
import { makeTempDir, removeDir } from "./process.ts";

export type { RedisServer, RedisServerTls };

/**
 * A real Redis for tests: src/local's redis-server (scripts/install-test-deps.sh installs it) on a free
 * 127.0.0.1 port, without persistence, in its own temp dir, which stop() removes. Data does not survive
 * halt()/restart(): a restarted server is empty, like a fresh Redis. With `tls`, TLS only (`--port 0`).
 */
export async function startRedis(
  opts: { password?: string; tls?: RedisServerTls } = {},
): Promise<RedisServer> {
  const dir = await makeTempDir("redis");
  try {
    const server = await startRedisServer({ dir, password: opts.password, tls: opts.tls });
    return {
      ...server,
      stop: async () => {
        await server.stop();
        await removeDir(dir);
      },
    };
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}
