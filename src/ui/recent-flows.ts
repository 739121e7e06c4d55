/**
 * The flows the table can show: a fixed ring of the newest envelopes with a
 * sequence number each (the row id is the flow's uuid, else `#<seq>`).
 * push() is the per-flow cost: one slot write. Rows are built only for what
 * a request or stream sends.
 */
import type { FlowEnvelope, FlowPredicate } from '../flows/index.ts';
import type { FlowRow } from './api.ts';
import { flowRow } from './flow-row.ts';

export class RecentFlows {
  readonly capacity: number;
  readonly #slots: (FlowEnvelope | undefined)[];
  /** Sequence number of the next push; the newest kept is written - 1. */
  written = 0;

  constructor(capacity = 5000) {
    this.capacity = capacity;
    this.#slots = new Array<FlowEnvelope | undefined>(capacity);
  }

  push(e: FlowEnvelope): void {
    this.#slots[this.written % this.capacity] = e;
    this.written++;
  }

  get size(): number {
    return Math.min(this.written, this.capacity);
  }

  get oldest(): number {
    return Math.max(0, this.written - this.capacity);
  }

  at(seq: number): FlowEnvelope | undefined {
    if (seq < this.oldest || seq >= this.written) return undefined;
    return this.#slots[seq % this.capacity];
  }

  static rowId(seq: number, e: FlowEnvelope): string {
    return e.flow.uuid ?? `#${seq}`;
  }

  row(seq: number): FlowRow | undefined {
    const e = this.at(seq);
    return e === undefined ? undefined : flowRow(RecentFlows.rowId(seq, e), e);
  }

  /** The newest `limit` flows matching, newest first, from sequence `from` on (default: all kept). */
  newest(pred: FlowPredicate | undefined, limit: number, from = 0): FlowRow[] {
    const out: FlowRow[] = [];
    const stop = Math.max(from, this.oldest);
    for (let s = this.written - 1; s >= stop && out.length < limit; s--) {
      const e = this.#slots[s % this.capacity] as FlowEnvelope;
      if (pred === undefined || pred(e.flow)) out.push(flowRow(RecentFlows.rowId(s, e), e));
    }
    return out;
  }

  /** The kept envelope whose row id is `id`. */
  find(id: string): FlowEnvelope | undefined {
    const seqMatch = /^#(\d+)$/.exec(id);
    if (seqMatch !== null) return this.at(Number(seqMatch[1]));
    for (let s = this.written - 1; s >= this.oldest; s--) {
      const e = this.#slots[s % this.capacity] as FlowEnvelope;
      if (e.flow.uuid === id) return e;
    }
    return undefined;
  }
}
