/** A member of a document's top-level object, as the document's text writes it. */
export interface RawMember {
  /** The key, decoded. */
  readonly key: string;
  /** The key's token as written: quotes and escapes included. */
  readonly token: string;
  /** The value's text as written: inner whitespace, number forms and escapes included. */
  readonly value: string;
  /** How many arrays and objects deep the value nests: 0 for a scalar, 1 for `[1, 2]`. */
  readonly depth: number;
}

const quote = 0x22;
const backslash = 0x5c;
const openBracket = 0x5b;
const closeBracket = 0x5d;
const openBrace = 0x7b;
const closeBrace = 0x7d;
const comma = 0x2c;

/**
 * The members of the top-level object of `text`, in the text's order, duplicates included (the
 * last one is the value, as `JSON.parse` decides). One linear pass, which relies on `JSON.parse`
 * having accepted `text` as an object: it only finds where each token ends, skipping strings
 * (with their escapes) and nested values, so that a write can copy a value's text unchanged.
 */
export function scanMembers(text: string): RawMember[] {
  const members: RawMember[] = [];
  // Whitespace holds no "{": the first one opens the object.
  let at = skipSpace(text, text.indexOf("{") + 1);
  if (text.charCodeAt(at) === closeBrace) return members;
  for (;;) {
    const keyEnd = stringEnd(text, at);
    const token = text.slice(at, keyEnd);
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const { end, depth } = valueEnd(text, start);
    // A key without escapes is its own text; JSON.parse decodes the others.
    const key = token.includes("\\") ? (JSON.parse(token) as string) : token.slice(1, -1);
    members.push({ key, token, value: text.slice(start, end), depth });
    at = skipSpace(text, end);
    if (text.charCodeAt(at) === closeBrace) return members;
    at = skipSpace(text, at + 1);
  }
}

/** Where the value that starts at `start` ends, and how deep it nests. */
function valueEnd(text: string, start: number): { end: number; depth: number } {
  const first = text.charCodeAt(start);
  if (first === quote) return { end: stringEnd(text, start), depth: 0 };
  if (first !== openBracket && first !== openBrace) {
    // A number, true, false or null: it runs to the next space, comma or closing brace.
    let end = start + 1;
    while (end < text.length && !isSpace(text.charCodeAt(end)) && text.charCodeAt(end) !== comma && text.charCodeAt(end) !== closeBrace) end++;
    return { end, depth: 0 };
  }
  let depth = 0;
  let deepest = 0;
  for (let at = start; ; at++) {
    const char = text.charCodeAt(at);
    if (char === quote) {
      at = stringEnd(text, at) - 1;
    } else if (char === openBracket || char === openBrace) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if ((char === closeBracket || char === closeBrace) && --depth === 0) {
      return { end: at + 1, depth: deepest };
    }
  }
}

/** The index just past the string whose opening quote is at `start`. */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  while (isEscaped(text, end)) end = text.indexOf('"', end + 1);
  return end + 1;
}

/** Whether the quote at `at` follows an odd number of backslashes. */
function isEscaped(text: string, at: number): boolean {
  let count = 0;
  while (text.charCodeAt(at - count - 1) === backslash) count++;
  return count % 2 === 1;
}

function skipSpace(text: string, at: number): number {
  while (isSpace(text.charCodeAt(at))) at++;
  return at;
}

/** JSON's whitespace: space, tab, line feed, carriage return. */
function isSpace(char: number): boolean {
  return char === 0x20 || char === 0x09 || char === 0x0a || char === 0x0d;
}
