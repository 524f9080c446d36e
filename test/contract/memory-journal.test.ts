import { modelContract, storeContract } from "@aiokv/test-suite";
import { memoryJournalHarness } from "../helpers/memory-harness.js";

// The whole contract on journal stores (journal: true): each write appends to the volume's journal.
storeContract("MemoryBackend with journal", memoryJournalHarness);
modelContract("MemoryBackend with journal", memoryJournalHarness);
