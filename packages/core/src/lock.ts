/**
 * A FIFO mutex: `run(fn)` calls `fn` once every earlier call's `fn` has settled, so operations
 * take effect in the order they were called. Six lines instead of a dependency: no library
 * offers less, and this one's cost is two promises per call.
 */
export class Lock {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.then(noop, noop);
    return result;
  }
}

function noop(): void {}
