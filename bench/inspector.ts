/**
 * The V8 heap of a Node process started with `--inspect=127.0.0.1:PORT`, read through the inspector protocol
 * (Node's global WebSocket): a full garbage collection (HeapProfiler.collectGarbage), then the heap in use
 * (Runtime.getHeapUsage). What the process holds, without the garbage an RSS reading includes.
 */
export async function heapAfterGc(port: number): Promise<{ usedBytes: number; totalBytes: number }> {
  const res = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(10_000) });
  const targets = (await res.json()) as Array<{ webSocketDebuggerUrl?: string }>;
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}`);
  const ws = new WebSocket(url);
  const pending = new Map<number, (result: unknown) => void>();
  let nextId = 1;
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error(`cannot connect to the inspector at ${url}`)), {
      once: true,
    });
  });
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(String(event.data)) as {
      id?: number;
      result?: unknown;
      error?: { message: string };
    };
    if (msg.id === undefined) return;
    const done = pending.get(msg.id);
    pending.delete(msg.id);
    done?.(msg.error ? new Error(msg.error.message) : msg.result);
  });
  const call = (method: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => reject(new Error(`inspector ${method}: no answer`)), 30_000);
      pending.set(id, (result) => {
        clearTimeout(timer);
        if (result instanceof Error) reject(result);
        else resolve(result);
      });
      ws.send(JSON.stringify({ id, method }));
    });
  try {
    await call("HeapProfiler.enable");
    // Twice: the first collection can leave objects whose finalizers free more on the second.
    await call("HeapProfiler.collectGarbage");
    await call("HeapProfiler.collectGarbage");
    const usage = (await call("Runtime.getHeapUsage")) as { usedSize: number; totalSize: number };
    await call("HeapProfiler.disable");
    return { usedBytes: usage.usedSize, totalBytes: usage.totalSize };
  } finally {
    ws.close();
  }
}
