// JSON.parse, corrected for a V8 bug (Node.js 24, V8 13.6 and later; nodejs/node#63785, crbug
// 521080746): an object key written with an escape ("\u0063", "\n", "\"") can come back as the
// name of an earlier object's key that holds a backslash ("\\"), when that object had the same
// keys before it. No V8 flag avoids it. A key decoded wrongly always contains a backslash, and
// only a text with a backslash has escapes: when neither is seen, JSON.parse's answer stands,
// which is every document whose keys hold no backslash, at the cost of one scan of the text.

/** `JSON.parse(text)` with every key as the text spells it. */
export function parseJson(text: string): unknown {
  const data: unknown = JSON.parse(text); // also the syntax check, with its error
  if (!text.includes("\\") || !hasBackslashKey(data)) return data;
  try {
    return build(text);
  } catch (error) {
    // Nested deeper than the stack allows: far past MAX_DEPTH, which the caller refuses anyway.
    if (error instanceof RangeError) return data;
    throw error;
  }
}

/** Whether any object inside `value` has a key with a backslash; iterative, for any depth. */
function hasBackslashKey(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const inner = stack.pop();
    if (typeof inner !== "object" || inner === null) continue;
    if (Array.isArray(inner)) {
      for (const item of inner) stack.push(item);
      continue;
    }
    for (const [key, item] of Object.entries(inner)) {
      if (key.includes("\\")) return true;
      stack.push(item);
    }
  }
  return false;
}

const space = /[ \t\n\r]*/y;
const string = /"(?:[^"\\]|\\.)*"/y;
const scalar = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/**
 * The value of a text JSON.parse has accepted, built here: JSON.parse decodes only its single
 * strings and numbers, which have no keys. Keys are defined as own properties, as JSON.parse
 * defines them (`__proto__` included; a repeated key keeps its first place and its last value).
 */
function build(text: string): unknown {
  let at = 0;
  const skip = (): void => {
    space.lastIndex = at;
    space.exec(text);
    at = space.lastIndex;
  };
  const token = (pattern: RegExp): unknown => {
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    at = pattern.lastIndex;
    return JSON.parse(match?.[0] ?? "");
  };
  const value = (): unknown => {
    skip();
    const first = text[at];
    if (first === "{") {
      const object: Record<string, unknown> = {};
      at++;
      skip();
      if (text[at] === "}") return (at++, object);
      for (;;) {
        skip();
        const key = token(string) as string;
        skip();
        at++; // ":"
        Object.defineProperty(object, key, { value: value(), writable: true, enumerable: true, configurable: true });
        skip();
        if (text[at++] === "}") return object;
      }
    }
    if (first === "[") {
      const array: unknown[] = [];
      at++;
      skip();
      if (text[at] === "]") return (at++, array);
      for (;;) {
        array.push(value());
        skip();
        if (text[at++] === "]") return array;
      }
    }
    return token(first === '"' ? string : scalar);
  };
  return value();
}
