import { backendContract, modelContract, storeContract } from "@aiokv/contract";
import { memoryHarness } from "./memory-harness.js";

backendContract("MemoryBackend", memoryHarness);
storeContract("MemoryBackend", memoryHarness);
modelContract("MemoryBackend", memoryHarness);
