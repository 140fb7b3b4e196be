import { type RedisServer, startRedisServer } from "../../src/local/index.ts";
import { makeTempDir, removeDir } from "./process.ts";

export type { RedisServer };

/**
 * A real Redis for tests: src/local's redis-server (scripts/install-test-deps.sh installs it) on a free
 * 127.0.0.1 port, without persistence, in its own temp dir, which stop() removes. Data does not survive
 * halt()/restart(): a restarted server is empty, like a fresh Redis.
 */
export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  const dir = await makeTempDir("redis");
  try {
    const server = await startRedisServer({ dir, password: opts.password });
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
