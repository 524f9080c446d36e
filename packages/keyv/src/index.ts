export { KeyvAioKV, type KeyvAioKVOptions, type KeyvAioKVOpts, type KeyvDeserialize } from "./keyv-aiokv.js";
