// What the owner lock's tests share: locks planted as a holder would have left them.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The shortest stale time, which the lock tests run at. */
export const staleAfter = 2000;
/** Leaves `file`'s lock as a holder left it: generation `generation`, written by `record`. */
export async function plantLock(file: string, record: object, generation = 1): Promise<string> {
  await mkdir(`${file}.lock`, { recursive: true });
  const path = join(`${file}.lock`, `${generation}.json`);
  await writeFile(path, JSON.stringify({ since: new Date().toISOString(), process: "elsewhere", token: "0", ...record }));
  return path;
}

/** The generations in `file`'s lock directory (not the holders' sockets and candidates, dot files). */
export async function generations(file: string): Promise<string[]> {
  return (await readdir(`${file}.lock`)).filter((name) => !name.startsWith(".")).sort();
}
