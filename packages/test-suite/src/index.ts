export { apiContract } from "./api-contract.js";
export { backendContract } from "./backend-contract.js";
export { concurrencyContract } from "./concurrency-contract.js";
export { documentContract } from "./document-contract.js";
export { errorsContract } from "./errors-contract.js";
export { followContract } from "./follow-contract.js";
export {
  holdable,
  instrumented,
  journalMethods,
  recordingLogger,
  skipWithout,
  storeOptions,
  until,
  type Capability,
  type Harness,
  type HarnessFactory,
  type HarnessStoreOptions,
} from "./harness.js";
export { documentWithJournal, journalHarness } from "./journal-reader.js";
export { keysContract } from "./keys-contract.js";
export { lockContract } from "./lock-contract.js";
export { modelContract } from "./model-contract.js";
export { quarantineContract } from "./quarantine-contract.js";
export { schemaContract } from "./schema-contract.js";
export { storeContract } from "./store-contract.js";
export { valuesContract } from "./values-contract.js";
export { collectionContract } from "./collection-contract.js";
export { watchContract } from "./watch-contract.js";
export { eventually } from "./support.js";
