import type { HarnessFactory } from "./harness.js";
import { apiContract } from "./api-contract.js";
import { concurrencyContract } from "./concurrency-contract.js";
import { documentContract } from "./document-contract.js";
import { errorsContract } from "./errors-contract.js";
import { followContract } from "./follow-contract.js";
import { keysContract } from "./keys-contract.js";
import { lockContract } from "./lock-contract.js";
import { quarantineContract } from "./quarantine-contract.js";
import { schemaContract } from "./schema-contract.js";
import { collectionContract } from "./collection-contract.js";
import { watchContract } from "./watch-contract.js";
import { valuesContract } from "./values-contract.js";

/**
 * Registers the tests of AioKV's whole contract on a backend: every topic suite below, each of
 * which can also be run on its own. A backend is done when these pass.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function storeContract(name: string, makeHarness: HarnessFactory): void {
  valuesContract(name, makeHarness);
  keysContract(name, makeHarness);
  documentContract(name, makeHarness);
  errorsContract(name, makeHarness);
  concurrencyContract(name, makeHarness);
  lockContract(name, makeHarness);
  apiContract(name, makeHarness);
  quarantineContract(name, makeHarness);
  schemaContract(name, makeHarness);
  collectionContract(name, makeHarness);
  watchContract(name, makeHarness);
  followContract(name, makeHarness);
}
