export { aiokvDriver, type AioKVDriver, type AioKVDriverBase, type AioKVDriverOptions } from "./driver.js";
