import { backendContract, modelContract, storeContract } from "@aiokv/test-suite";
import { memoryHarness } from "./memory-harness.js";

backendContract("MemoryBackend", memoryHarness);
storeContract("MemoryBackend", memoryHarness);
modelContract("MemoryBackend", memoryHarness);
