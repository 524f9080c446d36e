// Keyv's published compliance suite (@keyv/test-suite) on KeyvAioKV over a real JSON file: every
// test it has for a storage adapter (API, values, namespaces, iterator). Skipped: none. Not run:
// keyvCompresstionTests, which tests a compression adapter (gzip, brotli), not a store.
//
// Each test gets a fresh file in a temp dir. The suite calls its store factory several times in
// one test (and two Keyvs with different namespaces in one), expecting them all to see one
// storage; aiokv allows one open store per file, so the factory gives a new adapter (with its
// own namespace) over that test's one AioKV, as an application sharing a file between Keyvs does.
import { AioKV } from "aiokv";
import { KeyvAioKV } from "@aiokv/keyv";
import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite";
import Keyv from "keyv";
import * as vitest from "vitest";
import { afterEach, beforeEach, describe } from "vitest";
import { tempFile } from "../helpers/temp.js";

let kv: AioKV | undefined;
const store = (): KeyvAioKV => {
  if (kv === undefined) throw new Error("no store: the factory was called outside a test");
  return new KeyvAioKV(kv);
};

// Registered before the suite's own hooks: beforeEach runs first, afterEach (stacked) last.
beforeEach(async () => {
  kv = new AioKV(await tempFile());
});
afterEach(async () => {
  await kv?.close();
  kv = undefined;
});

describe("@keyv/test-suite on KeyvAioKV (a JSON file)", () => {
  keyvTestSuite(vitest, Keyv, store);
});

describe("@keyv/test-suite iterator tests on KeyvAioKV (a JSON file)", () => {
  keyvIteratorTests(vitest, Keyv, store);
});
