import type { JsonValue } from "./json-value.js";

/**
 * `T` where it is JSON data by its structure, `never` at every place where it is not (a function,
 * symbol, bigint, `undefined`, a method of a `Date` or `Map`). Unlike {@link JsonValue}, it takes
 * an `interface` (which has no index signature, so is not assignable to `JsonValue`). What types
 * cannot tell (NaN, a class instance with only data fields) is refused by `set()` at run time.
 */
export type JsonCompatible<T> = T extends JsonValue
  ? T // Also ends the recursion on JsonValue itself.
  : T extends (...args: never[]) => unknown
    ? never
    : T extends readonly unknown[]
      ? { [I in keyof T]: JsonCompatible<T[I]> }
      : T extends object
        ? { [K in keyof T]: K extends string ? JsonCompatible<T[K]> : never }
        : never;

/**
 * The constraint of a value type argument, `get<V extends JsonShape<V>>`: `V`'s properties are
 * JSON data. (A bound cannot be {@link JsonCompatible} itself: a conditional type that refers
 * to the parameter it bounds is circular.)
 */
export type JsonShape<V> = { [K in keyof V]: JsonCompatible<V[K]> };

/**
 * What a typed store's document type must be: an object type whose properties are JSON data
 * (optional ones, and interfaces, included). `AioKV<{ last_command: string; seen: number[] }>`.
 */
export type StoreShape<T> = { [K in keyof T]: JsonCompatible<T[K]> | undefined };

/** Whether `T` is the untyped document (any string key, any JSON value). */
type IsUntyped<T> = string extends keyof T ? true : false;

/** The keys of a store: any string when untyped. */
export type StoreKey<T> = IsUntyped<T> extends true ? string : Extract<keyof T, string>;

/** The type of the value stored under `K`. */
export type StoreValue<T, K extends PropertyKey> = K extends keyof T ? Exclude<T[K], undefined> : never;

/** The keys whose type admits a number: the ones `set(key)` may give its timestamp. */
export type TimestampKey<T> = { [K in StoreKey<T>]: number extends StoreValue<T, K> ? K : never }[StoreKey<T>];

/** A key of an untyped store; `never` for a typed one, whose keys are checked by the typed overloads. */
export type UntypedKey<T> = IsUntyped<T> extends true ? string : never;

/** What `getAll()` resolves: every key optional, since a store holds only what was set. */
export type StoreContents<T> = IsUntyped<T> extends true ? T : { [K in keyof T]?: Exclude<T[K], undefined> };

/** One `[key, value]` pair of the store, typed per key. */
export type StoreEntry<T> = { [K in StoreKey<T>]: readonly [K, StoreValue<T, K>] }[StoreKey<T>];

/**
 * One change to a store, as `watch()` reports it once the backend holds it: a key set (its new
 * value, a copy), a key deleted, or every key removed by `clear()`.
 */
export type StoreChange<T = JsonObjectLike> =
  | { readonly type: "set"; readonly key: StoreKey<T>; readonly value: StoreValueOf<T> }
  | { readonly type: "delete"; readonly key: StoreKey<T> }
  | { readonly type: "clear" };

type JsonObjectLike = { [key: string]: JsonValue };
type StoreValueOf<T> = IsUntyped<T> extends true ? JsonValue : { [K in StoreKey<T>]: StoreValue<T, K> }[StoreKey<T>];
