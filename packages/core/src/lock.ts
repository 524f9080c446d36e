/**
 * A FIFO mutex: `run(fn)` calls `fn` once every earlier call's `fn` has settled, so operations
 * take effect in the order they were called. Its cost is two promises per call, and `idle` lets
 * a caller whose step is synchronous skip even that when nothing is waiting.
 */
export class Lock {
  #tail: Promise<unknown> = Promise.resolve();
  #waiting = 0;

  /** No call is waiting or running: a synchronous step run now keeps the order. */
  get idle(): boolean {
    return this.#waiting === 0;
  }

  run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    this.#waiting++;
    const result = this.#tail.then(fn);
    this.#tail = result.then(this.#done, this.#done);
    return result;
  }

  readonly #done = (): void => {
    this.#waiting--;
  };
}
