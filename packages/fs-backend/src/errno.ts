/** Whether `error` is a Node.js system error with this `code` (`"ENOENT"`, `"EEXIST"`). */
export function isCode(error: unknown, code: string): boolean {
  return (error as { code?: unknown } | null)?.code === code;
}
