import { backendContract, modelContract, storeContract } from "@aiokv/test-suite";
import { fileHarness } from "../helpers/file-harness.js";

backendContract("FileBackend", () => fileHarness());
storeContract("FileBackend", () => fileHarness());
modelContract("FileBackend", () => fileHarness(), 30);
modelContract("FileBackend without sync", () => fileHarness({ sync: false }), 30);
