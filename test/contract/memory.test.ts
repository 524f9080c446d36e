import { backendContract, modelContract, storeContract } from "@aiokv/test-suite";
import { memoryHarness } from "../helpers/memory-harness.js";

backendContract("MemoryBackend", memoryHarness);
storeContract("MemoryBackend", memoryHarness);
modelContract("MemoryBackend", memoryHarness);
