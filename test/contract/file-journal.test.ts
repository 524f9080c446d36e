import { modelContract, storeContract } from "@aiokv/test-suite";
import { fileJournalHarness } from "../helpers/file-harness.js";

// The whole contract on journal stores (journal: true): each write appends to state.json.journal.
storeContract("FileBackend with journal", () => fileJournalHarness());
modelContract("FileBackend with journal", () => fileJournalHarness(), 30);
modelContract("FileBackend with journal, without sync", () => fileJournalHarness({ sync: false }), 30);
