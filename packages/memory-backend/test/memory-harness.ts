import type { Harness } from "@aiokv/test-suite";
import { MemoryBackend } from "@aiokv/memory-backend";

/** One MemoryBackend per test; reopening is a new AioKV on the same instance. */
export function memoryHarness(): Harness {
  const backend = new MemoryBackend({ name: "contract" });
  return {
    backend: () => backend,
    plant: (text) => (text === undefined ? backend.remove() : backend.write([new TextEncoder().encode(text)])),
    peek: () => backend.read(),
    peekAt: (location) => backend.readAside(location),
  };
}
