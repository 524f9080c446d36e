// The workspace's packages, read from pnpm-workspace.yaml: the one list that the build, the
// packing and the tests use. It reads the two forms of entry the file holds, "dir" and "dir/*".
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../", import.meta.url));

/** The entries of pnpm-workspace.yaml's `packages:` list. */
function globs() {
  const text = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8");
  const section = /^packages:\s*\n((?:[ \t]+.*\n?|\s*\n)*)/m.exec(text)?.[1] ?? "";
  return Array.from(section.matchAll(/^\s+-\s+["']?([^"'\s#]+)["']?/gm), (match) => match[1]);
}

function directories(glob) {
  if (!glob.endsWith("/*")) return [glob];
  const parent = glob.slice(0, -2);
  if (/[!*?{[]/.test(parent)) throw new Error(`pnpm-workspace.yaml: scripts/workspace.mjs reads "dir" and "dir/*" entries, not ${JSON.stringify(glob)}`);
  return readdirSync(join(root, parent), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => `${parent}/${entry.name}`);
}

/**
 * Every workspace package as { dir, name, private, manifest }, each after the workspace
 * packages its code imports (dependencies and peers; dev dependencies serve only its tests and
 * may point back), so that builds run in that order.
 */
export function workspacePackages() {
  const found = globs()
    .flatMap(directories)
    .filter((dir) => existsSync(join(root, dir, "package.json")))
    .map((dir) => {
      const manifest = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
      return { dir, name: manifest.name, private: manifest.private === true, manifest };
    });
  const byName = new Map(found.map((pkg) => [pkg.name, pkg]));
  const ordered = [];
  const visit = (pkg, path = []) => {
    if (ordered.includes(pkg)) return;
    if (path.includes(pkg)) throw new Error(`workspace dependency cycle: ${[...path, pkg].map((p) => p.name).join(" -> ")}`);
    const { dependencies = {}, peerDependencies = {} } = pkg.manifest;
    for (const name of Object.keys({ ...dependencies, ...peerDependencies })) {
      const dependency = byName.get(name);
      if (dependency && dependency !== pkg) visit(dependency, [...path, pkg]);
    }
    ordered.push(pkg);
  };
  for (const pkg of found) visit(pkg);
  return ordered;
}

/** The packages published to npm (those not marked private), in dependency order. */
export function publishedPackages() {
  return workspacePackages().filter((pkg) => !pkg.private);
}
