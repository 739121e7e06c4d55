/**
 * The service map's placement: namespaces as boxes packed in shelves, workloads
 * as cards in a grid inside their box. Stable as traffic changes: the first
 * snapshot is placed in sorted order, later arrivals take the next free slot, and
 * a card never changes its slot. A box reserves room by doubling (1, 2, 4, 8 …
 * slots) so it rarely grows; only when one does are the boxes after it re-packed.
 */

export const CARD_W = 168;
export const CARD_H = 40;
const GAP_X = 18;
const GAP_Y = 16;
const PAD = 14;
const HEAD = 26;
const BOX_GAP = 28;
const MAX_COLS = 6;

export interface Box { ns: string; x: number; y: number; w: number; h: number }
export interface Point { x: number; y: number }

interface NsSlots { ids: string[]; slot: Map<string, number>; capacity: number }

export class MapLayout {
  private readonly order: string[] = [];
  private readonly spaces = new Map<string, NsSlots>();
  readonly boxes = new Map<string, Box>();
  private readonly pos = new Map<string, Point>();
  /** Width the shelves fill; fixed at the first placement so later ones cannot reflow the map. */
  private width = 0;
  /** Bumped whenever any card or box moved (the renderer then re-positions everything). */
  version = 0;

  /** Places every workload not seen before; returns whether anything already placed moved. */
  place(workloads: { id: string; namespace: string }[], aspect = 1.6): boolean {
    const fresh = workloads.filter((w) => !this.spaces.get(w.namespace)?.slot.has(w.id));
    if (fresh.length === 0) return false;
    fresh.sort((a, b) => (a.namespace === b.namespace ? cmp(a.id, b.id) : cmp(a.namespace, b.namespace)));
    let resized = false;
    for (const w of fresh) {
      let space = this.spaces.get(w.namespace);
      if (space === undefined) {
        space = { ids: [], slot: new Map(), capacity: 0 };
        this.spaces.set(w.namespace, space);
        this.order.push(w.namespace);
        resized = true;
      }
      space.slot.set(w.id, space.ids.length);
      space.ids.push(w.id);
      if (space.ids.length > space.capacity) {
        space.capacity = Math.max(1, space.capacity * 2);
        while (space.capacity < space.ids.length) space.capacity *= 2;
        resized = true;
      }
    }
    if (this.width === 0) {
      let area = 0;
      for (const s of this.spaces.values()) area += boxSize(s.capacity).w * boxSize(s.capacity).h;
      // Shelves about as wide as the viewport's shape asks, so the first view fills it.
      this.width = Math.max(760, Math.sqrt(area * aspect) * 1.15);
    }
    const before = this.version;
    if (resized) this.pack();
    for (const w of fresh) this.pos.set(w.id, this.cardPos(w.namespace, w.id));
    if (resized) {
      // Cards keep their slot in their box; a box that moved carries its cards along.
      for (const [ns, space] of this.spaces) for (const id of space.ids) this.pos.set(id, this.cardPos(ns, id));
      this.version++;
    }
    return this.version !== before;
  }

  position(id: string): Point | undefined {
    return this.pos.get(id);
  }

  bounds(only?: Set<string>): { x: number; y: number; w: number; h: number } {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const b of this.boxes.values()) {
      if (only && !only.has(b.ns)) continue;
      x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y);
      x1 = Math.max(x1, b.x + b.w); y1 = Math.max(y1, b.y + b.h);
    }
    if (x0 === Infinity) return { x: 0, y: 0, w: 800, h: 500 };
    return { x: x0 - 20, y: y0 - 20, w: x1 - x0 + 40, h: y1 - y0 + 40 };
  }

  private pack(): void {
    let x = 0, y = 0, shelf = 0;
    for (const ns of this.order) {
      const space = this.spaces.get(ns);
      if (space === undefined) continue;
      const { w, h } = boxSize(space.capacity);
      if (x > 0 && x + w > this.width) {
        x = 0;
        y += shelf + BOX_GAP;
        shelf = 0;
      }
      this.boxes.set(ns, { ns, x, y, w, h });
      x += w + BOX_GAP;
      shelf = Math.max(shelf, h);
    }
  }

  private cardPos(ns: string, id: string): Point {
    const box = this.boxes.get(ns);
    const space = this.spaces.get(ns);
    const slot = space?.slot.get(id) ?? 0;
    const cols = columns(space?.capacity ?? 1);
    return {
      x: (box?.x ?? 0) + PAD + (slot % cols) * (CARD_W + GAP_X),
      y: (box?.y ?? 0) + HEAD + PAD + Math.floor(slot / cols) * (CARD_H + GAP_Y),
    };
  }
}

/** Columns grow with capacity up to MAX_COLS; slot i < old column count stays in row 0, so growth never moves a card. */
function columns(capacity: number): number {
  return Math.min(MAX_COLS, capacity);
}

function boxSize(capacity: number): { w: number; h: number } {
  const cols = columns(capacity);
  const rows = Math.ceil(capacity / cols);
  return { w: PAD * 2 + cols * CARD_W + (cols - 1) * GAP_X, h: HEAD + PAD * 2 + rows * CARD_H + (rows - 1) * GAP_Y };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
