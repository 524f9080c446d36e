import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StoredDocument } from "../src/document.js";
import { parseJson } from "../src/json-parse.js";

// V8 13.6+ (Node.js 24; nodejs/node#63785): once an object with keys x, "\" exists, JSON.parse
// gives the escaped key of '{"x":1,"\u0063":2}' the name "\" instead of "c". A key new to this
// process (x) keeps the objects' shapes few, as the bug needs.
const x = `x${Math.random().toString(36).slice(2)}`;
const prime = (): unknown => JSON.parse(`{"${x}":1,"\\\\":2}`);

describe("parseJson", () => {
  it("names an escaped key as the text spells it, after an object with a backslash key primed V8's bug", () => {
    prime();
    console.log(`JSON.parse on ${process.version}: ${JSON.stringify(Object.keys(JSON.parse(`{"${x}":1,"\\u0063":2}`) as object))}`);
    expect(Object.keys(parseJson(`{"${x}":1,"\\u0063":2}`) as object)).toStrictEqual([x, "c"]);
    expect(parseJson('{"x":1,"\\"":{"x":1,"\\n":[1,{"\\u00e9":null}]}}')).toStrictEqual({ x: 1, '"': { x: 1, "\n": [1, { é: null }] } });
  });

  it("a store loads such a file with its keys as written", async () => {
    JSON.parse(`{"${x}id":1,"\\\\":2}`);
    const document = await StoredDocument.parse(`{"${x}id":1,"\\n":"newline key"}`, "test:v8");
    expect([document.has("\n"), document.has("\\"), document.get("\n")]).toStrictEqual([true, false, '"newline key"']);
  });

  it("is JSON.parse for any JSON value with odd keys: same keys, order, values, __proto__ as an own key", () => {
    const key = fc.oneof(fc.constantFrom("\\", "\n", '"', "__proto__", x, "id", "c", "\\u", "a\\", ""), fc.string({ maxLength: 3 }));
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: "small" }, fc.jsonValue({ maxDepth: 0 }), fc.array(tie("node"), { maxLength: 3 }), fc.dictionary(key, tie("node"), { maxKeys: 4 })),
    })).node;
    fc.assert(
      fc.property(value, fc.constantFrom(undefined, 1, "\t"), (data, indent) => {
        prime();
        const text = JSON.stringify(data, null, indent);
        const parsed = parseJson(text);
        // Compared as text, key order included; JSON.stringify writes keys as they are.
        expect(JSON.stringify(parsed)).toBe(JSON.stringify(data));
        expect(JSON.stringify(parseJson(`[${text},${text}]`))).toBe(JSON.stringify([data, data]));
      }),
      { numRuns: 500 },
    );
  });

  it("throws JSON.parse's SyntaxError for a text that is not JSON", () => {
    expect(() => parseJson('{"a": ')).toThrow(SyntaxError);
  });
});
