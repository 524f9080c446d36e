import * as jsonc from "jsonc-parser";
import type { TextPosition } from "./errors.js";

/** The first place where `text` stops being strict JSON, and what is wrong there. */
export interface SyntaxProblem {
  readonly position: TextPosition;
  /** Such as "value expected", "close brace expected", "invalid symbol". */
  readonly problem: string;
}

/**
 * Locates the first syntax error of a text that `JSON.parse` refused. `JSON.parse` decides what
 * is valid, but V8's messages name no position for most errors; jsonc-parser, in its strict mode,
 * reports offsets.
 *
 * @returns The problem, or `undefined` when jsonc-parser finds none where `JSON.parse` did.
 */
export function locateSyntaxError(text: string): SyntaxProblem | undefined {
  const errors: jsonc.ParseError[] = [];
  jsonc.parse(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const first = errors[0];
  if (first === undefined) return undefined;
  const problem = jsonc
    .printParseErrorCode(first.error)
    .replace(/[A-Z]/g, (letter) => ` ${letter.toLowerCase()}`)
    .trim();
  return { position: positionOf(text, first.offset), problem };
}

function positionOf(text: string, offset: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  for (let at = text.indexOf("\n"); at !== -1 && at < offset; at = text.indexOf("\n", at + 1)) {
    line++;
    lineStart = at + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
