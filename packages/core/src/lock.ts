/**
 * A FIFO mutex: `run(fn)` calls `fn` once every earlier call's `fn` has settled, so operations
 * take effect in the order they were called. Its cost is two promises per call, and `idle` lets
 * a caller whose step is synchronous skip even that when nothing is waiting.
 */
export class Lock {
  #tail: Promise<unknown> = Promise.resolve();
  /** Steps called and steps settled, ever: a step's number is `#called` when it was called. */
  #called = 0;
  #settled = 0;
  #parked = false;
  /** `caughtUp()` callers, in the order of the step each waits for. */
  #watchers: Array<{ step: number; resolve: () => void }> = [];

  /** No call is waiting or running: a synchronous step run now keeps the order. */
  get idle(): boolean {
    return this.#called === this.#settled;
  }

  run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    this.#called++;
    const result = this.#tail.then(fn);
    this.#tail = result.then(this.#done, this.#done);
    return result;
  }

  /**
   * Resolves once every step called so far has settled, or the running one is parked on its
   * caller's code (`park()`), so that nothing called so far can act before that code is done.
   * Steps called later do not hold it back. `undefined` when that is so already.
   */
  caughtUp(): Promise<void> | undefined {
    if (this.idle || this.#parked) return undefined;
    return new Promise((resolve) => this.#watchers.push({ step: this.#called, resolve }));
  }

  /** Awaits `work`, code of the caller's that may take any time, from inside the running step. */
  async park<T>(work: PromiseLike<T>): Promise<T> {
    this.#parked = true;
    this.#wake(Infinity);
    try {
      return await work;
    } finally {
      this.#parked = false;
    }
  }

  readonly #done = (): void => {
    this.#settled++;
    this.#wake(this.#settled);
  };

  #wake(upTo: number): void {
    while (this.#watchers.length > 0 && (this.#watchers[0]?.step ?? Infinity) <= upTo) this.#watchers.shift()?.resolve();
  }
}
