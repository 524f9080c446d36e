import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { errorCode } from "@aiokv/core";

/** What an owner lock file says of its holder. */
export interface OwnerRecord {
  readonly pid: number;
  readonly host: string;
  /** When it took the lock (ISO 8601). */
  readonly since: string;
  /** Tells this process from an earlier one with the same pid (a restarted container's pid 1). */
  readonly process: string;
  /** The process's start time in clock ticks since boot (Linux), telling it from a later process given its pid. */
  readonly start?: string | undefined;
  /** The kernel's boot id (Linux): a lock from an earlier boot is dead whatever its pid. */
  readonly boot?: string | undefined;
  /** Names this holder's candidate file. */
  readonly token: string;
  /** The name, in the lock's directory, of a Unix socket the holder listens on while it lives. */
  readonly socket?: string | undefined;
}

type Identity = Pick<OwnerRecord, "pid" | "process" | "start" | "boot">;

// One identity per process, shared by every copy of this module (an ESM and a CommonJS copy load
// side by side in one process), so that none of them takes another's lock for a dead one.
const key = Symbol.for("@aiokv/fs-backend:process");
const shared = globalThis as { [key]?: Promise<Identity> };

/** This process's identity, read once. */
export function thisProcess(): Promise<Identity> {
  shared[key] ??= (async () => ({
    pid: process.pid,
    process: randomBytes(8).toString("hex"),
    start: await startTime(process.pid),
    boot: await readFile("/proc/sys/kernel/random/boot_id", "utf8").then((text) => text.trim(), () => undefined),
  }))();
  return shared[key];
}

/**
 * Whether the holder named by `record`, on this host, still runs. On the same kernel (the same boot
 * id) a holder's listening socket answers for it: a connection is refused once its process is
 * gone, whatever pid namespace (container) it ran in. Without one, its pid: a record with this
 * process's pid but another identity is an earlier process that had the same pid (a restarted
 * container's pid 1), dead.
 *
 * @param socket The path of the socket the record names, when it names one.
 */
export async function isAlive(record: Partial<OwnerRecord> & { pid: number }, socket?: string): Promise<boolean> {
  const self = await thisProcess();
  if (record.boot !== undefined && self.boot !== undefined && record.boot !== self.boot) return false;
  if (record.process === self.process) return true;
  const answered = socket !== undefined && record.boot !== undefined && record.boot === self.boot ? await answers(socket) : undefined;
  if (answered !== undefined) return answered;
  if (record.pid === self.pid) return false;
  try {
    process.kill(record.pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's.
    if (errorCode(error) !== "EPERM") return false;
  }
  // The pid exists; a zombie (killed, not yet reaped by its parent) is dead, and a different start
  // time means the pid was given to another process since.
  const fields = await statFields(record.pid);
  if (fields?.[0] === "Z" || fields?.[0] === "X") return false;
  const start = fields?.[19];
  return record.start === undefined || start === undefined || start === record.start;
}

/**
 * Whether something listens on the Unix socket at `path`: `false` only when the connection is
 * refused (the socket is there, its process gone). `undefined` when the socket file is missing:
 * removed by something else (a clean-up of old files in /tmp), which says nothing of its holder.
 */
export function answers(path: string): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", (error) => resolve(errorCode(error) === "ECONNREFUSED" ? false : errorCode(error) === "ENOENT" ? undefined : true));
  });
}

/** The fields of `/proc/<pid>/stat` from the third (state) on, where there is one. */
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** A process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`). */
async function startTime(pid: number): Promise<string | undefined> {
  return (await statFields(pid))?.[19];
}
