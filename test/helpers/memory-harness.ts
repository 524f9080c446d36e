import { journalHarness, type Harness } from "@aiokv/test-suite";
import { MemoryBackend } from "@aiokv/memory-backend";

/** One MemoryBackend per test; reopening is a new AioKV on the same instance. */
export function memoryHarness(): Harness {
  return harnessOn(new MemoryBackend({ name: "contract" }));
}

/**
 * {@link memoryHarness} whose stores keep a journal (`journal: true`): `peek()` answers what the
 * document and its journal hold together, the journal read as the volume holds it.
 */
export function memoryJournalHarness(): Harness {
  const backend = new MemoryBackend({ name: "contract" });
  return journalHarness(harnessOn(backend), () => backend.readJournal());
}

function harnessOn(backend: MemoryBackend): Harness {
  return {
    backend: () => backend,
    plant: (text) => (text === undefined ? backend.remove() : backend.write([new TextEncoder().encode(text)])),
    // Bytes come back only when they are not UTF-8; the suite plants text.
    peek: async () => {
      const read = await backend.read();
      return read instanceof Uint8Array ? new TextDecoder().decode(read) : read;
    },
    peekAt: (location) => backend.readAside(location),
  };
}
