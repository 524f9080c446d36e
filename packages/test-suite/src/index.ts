export { apiContract } from "./api-contract.js";
export { backendContract } from "./backend-contract.js";
export { instrumented, recordingLogger, skipWithout, until, type Capability, type Harness, type HarnessFactory } from "./harness.js";
export { modelContract } from "./model-contract.js";
export { storeContract } from "./store-contract.js";
