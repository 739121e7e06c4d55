/**
 * The agent's datapath applies, one at a time.
 *
 *   apply()    ─► the next apply that starts after this call (callers waiting at once share it)
 *   schedule() ─► an apply soon; a burst of events within `coalesceMs` makes one
 *
 * Serialised so the kernel sees states in order; shared because an apply
 * renders the whole current state, so one that starts after a caller's
 * change includes it, whoever asked for it.
 */
export interface ApplyQueueOptions<R> {
  /** One apply of the current state (render, program the kernel). */
  run(): Promise<R>;
  /** Where a scheduled apply's failure goes (nobody awaits it). */
  onError(err: unknown): void;
  /** How long a scheduled apply waits for more events; default 5 ms. */
  coalesceMs?: number;
}

export class ApplyQueue<R> {
  readonly #o: ApplyQueueOptions<R>;
  /** The last apply asked for: the next one starts after it settles. */
  #chain: Promise<R | undefined> = Promise.resolve(undefined);
  /** An apply asked for that has not started yet: new callers share it. */
  #queued: Promise<R> | undefined;
  #timerSet = false;
  #scheduling = false;
  #applied = 0;

  constructor(o: ApplyQueueOptions<R>) {
    this.#o = o;
  }

  /** Applies that succeeded. */
  get applied(): number {
    return this.#applied;
  }

  /**
   * Until this is called, schedule() does nothing: events before the first
   * apply are taken in by it (the agent calls this just before).
   */
  startScheduling(): void {
    this.#scheduling = true;
  }

  /** Resolves with the first apply that starts after this call; rejects if that apply fails. */
  apply(): Promise<R> {
    if (this.#queued) return this.#queued;
    const next = this.#chain
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#run();
      });
    this.#queued = next;
    this.#chain = next;
    return next;
  }

  /** An apply soon, coalescing a burst (a list after a restart, a multi-object apply) into one. */
  schedule(): void {
    if (!this.#scheduling || this.#timerSet) return;
    this.#timerSet = true;
    setTimeout(() => {
      this.#timerSet = false;
      this.apply().catch((err: unknown) => this.#o.onError(err));
    }, this.#o.coalesceMs ?? 5);
  }

  async #run(): Promise<R> {
    const result = await this.#o.run();
    this.#applied++;
    return result;
  }
}
