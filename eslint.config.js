// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/", "**/node_modules/", "**/fixtures/", "eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: ["./tsconfig.test.json", "./packages/*/tsconfig.json", "./demo/tsconfig.json", "./bench/tsconfig.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    // Plain build scripts: linted without type information, with Node's globals.
    files: ["scripts/**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { parserOptions: { project: false, projectService: false }, globals: { process: "readonly", console: "readonly", URL: "readonly" } },
  },
  {
    // Adapters wrap synchronous stores in async functions on purpose: every system is called alike.
    files: ["bench/**/*.ts"],
    rules: { "@typescript-eslint/require-await": "off" },
  },
);
