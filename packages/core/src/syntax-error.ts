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

/**
 * The offset of the first byte sequence of `bytes` that is not UTF-8 (where a decoder would put
 * its first U+FFFD), for a document that a strict decoder refused: the decoder names no offset.
 *
 * @returns The 0-based offset, or `undefined` when every sequence is valid.
 */
export function locateInvalidUtf8(bytes: Uint8Array): number | undefined {
  for (let at = 0; at < bytes.length; ) {
    const length = sequenceLength(bytes, at);
    if (length === 0) return at;
    at += length;
  }
  return undefined;
}

/** The length of the valid UTF-8 sequence at `at`, or 0 (RFC 3629: no overlong forms, surrogates, or code points past U+10FFFF). */
function sequenceLength(bytes: Uint8Array, at: number): number {
  const lead = bytes[at] ?? 0;
  if (lead < 0x80) return 1;
  // The lead byte sets the length and the range of the byte after it; the others are 80..BF.
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0;
    if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90;
    if (lead === 0xf4) high = 0x8f;
  } else return 0;
  for (let next = 1; next < length; next++) {
    const byte = bytes[at + next];
    if (byte === undefined || byte < (next === 1 ? low : 0x80) || byte > (next === 1 ? high : 0xbf)) return 0;
  }
  return length;
}
