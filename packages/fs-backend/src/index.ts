export { FileBackend, type FileBackendOptions } from "./file-backend.js";
