// Small pieces every backend needs, kept here so that each is written once.
import { errorCode, type StoreOwner } from "./errors.js";

/** What `operation` resolves, or `undefined` when the file it needs is absent (ENOENT). */
export async function unlessAbsent<T>(operation: Promise<T>): Promise<T | undefined> {
  try {
    return await operation;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * The owner named by a lock's record (JSON text, or a value already parsed), or `undefined` when
 * it does not hold one: a lock written by a crashed process, or by another program, says nothing
 * reliable of its holder.
 */
export function parseOwner(record: unknown): (StoreOwner & Record<string, unknown>) | undefined {
  let value: unknown = record;
  if (typeof record === "string") {
    try {
      value = JSON.parse(record);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { pid, host, since } = value as Partial<StoreOwner>;
  return typeof pid === "number" && typeof host === "string" && typeof since === "string" ? (value as StoreOwner & Record<string, unknown>) : undefined;
}
