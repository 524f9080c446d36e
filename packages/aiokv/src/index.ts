export * from "@aiokv/core";
// The path-taking store (and its old name) stands in for core's AioKV.
export { AioKV, aiocache } from "./aiokv.js";
export { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
