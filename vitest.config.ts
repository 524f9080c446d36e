import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    // Most of the suite's time is waiting (stale times, child processes, fsync), not computing:
    // three files at a time on two cores, where vitest's default would run one.
    maxWorkers: 3,
  },
});
