/**
 * The service map: one SVG, namespaces as boxes, workloads as cards, edges as
 * curves coloured by verdict. The first draw is one markup string (fast for
 * thousands of elements); updates reuse the elements and touch only what changed.
 * A lean map (hundreds of edges and more) draws its edges on a <canvas> under the
 * SVG instead: thousands of SVG paths cost the browser more to parse, style and
 * paint than the whole rest of the page, a canvas redraws them in milliseconds.
 */
import type { Edge, ServiceMap, Workload } from '../../src/ui/api.ts';
import { esc, rate } from './dom.ts';
import { CARD_H, CARD_W, MapLayout, type Point } from './layout.ts';

const SVG_NS = 'http://www.w3.org/2000/svg';
/**
 * Above this many edges (or twice as many workloads) the map is drawn lean: rate
 * labels and cards' second line go (into tooltips), edges are painted on the canvas;
 * thousands of them are unreadable at that scale and slow the browser's layout.
 */
const LABEL_LIMIT = 400;

export interface MapHandlers {
  node: (w: Workload) => void;
  edge: (e: Edge) => void;
}

/** A lean edge's line on the canvas, in map units. */
interface Segment { e: Edge; sx: number; sy: number; tx: number; ty: number }

/** A drawn item's element (a <g>). */
interface Drawn { el: SVGGElement | null; shape: string; style: string }

/**
 * How one layer draws its items. `shape` covers what needs new markup (position,
 * geometry); `style` what `patch` can change in place (colour, width, text), so a
 * rate change does not rebuild thousands of elements.
 */
interface LayerSpec<T> {
  /** The shape changes only when the layout moves (then `moved` says so): skip computing it otherwise. */
  stableShape: boolean;
  shape: (item: T) => string;
  style: (item: T) => string;
  html: (item: T) => string;
  patch: (el: SVGGElement, item: T) => void;
}

export class ServiceMapView {
  private readonly layouts = new Map<string, MapLayout>();
  private readonly nodes = new Map<string, Drawn>();
  private readonly edges = new Map<string, Drawn>();
  private readonly boxes = new Map<string, Drawn>();
  private readonly gBoxes: SVGGElement;
  private readonly gEdges: SVGGElement;
  private readonly gNodes: SVGGElement;
  private drawnKey = '';
  private drawnVersion = -1;
  private labels = true;
  private view = { x: 0, y: 0, w: 800, h: 500 };
  /** The user panned or zoomed: stop fitting the view to the content. */
  private userMoved = false;
  private size = { width: 0, height: 0 };
  /** Each drawn edge's stroke width, for the slack in edgeWidth. */
  private readonly widths = new Map<string, string>();
  private workloads = new Map<string, Workload>();
  private edgeData = new Map<string, Edge>();
  /** Lean drawing: the edges painted on the canvas, and their segments (map units) for hit tests. */
  private readonly canvas: HTMLCanvasElement;
  private leanEdges: Edge[] = [];
  private leanLayout: MapLayout | null = null;
  private segments: Segment[] = [];
  private paintQueued = false;
  /** What the canvas shows: each edge's look, and the view it was painted for. */
  private painted = new Map<string, string>();
  private paintedView = '';

  constructor(private readonly svg: SVGSVGElement, private readonly handlers: MapHandlers) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'map-edges';
    this.canvas.setAttribute('aria-hidden', 'true');
    svg.before(this.canvas);
    svg.innerHTML = `<defs>${['fwd', 'drop', 'mixed'].map((v) => `<marker id="arrow-${v}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto"><path d="M0,0L10,5L0,10z" class="arrow-${v}"/></marker>`).join('')}</defs>`
      + '<g class="boxes"></g><g class="edges"></g><g class="nodes"></g>';
    this.gBoxes = svg.querySelector('g.boxes') as SVGGElement;
    this.gEdges = svg.querySelector('g.edges') as SVGGElement;
    this.gNodes = svg.querySelector('g.nodes') as SVGGElement;
    this.wirePointer();
    // The size comes from a ResizeObserver: reading it during a draw would force a layout of the whole map.
    new ResizeObserver((entries) => {
      const r = entries[entries.length - 1]?.contentRect;
      if (r === undefined) return;
      const first = this.size.width === 0;
      if (r.width === this.size.width && r.height === this.size.height) return;
      this.size = { width: r.width, height: r.height };
      if (first || !this.userMoved) this.fit();
      this.queuePaint();
    }).observe(svg);
  }

  /** Draws the map for `namespace` ('' = every namespace). Returns how many workloads and edges are shown. */
  render(map: ServiceMap, namespace: string): { workloads: number; edges: number } {
    const key = namespace || '*';
    // Before the first draw the page is nearly empty, so its size is cheap to read; waiting for the
    // ResizeObserver instead would place and fit the map for a guessed shape, then all over again.
    if (this.size.width === 0) {
      const r = this.svg.getBoundingClientRect();
      this.size = { width: r.width, height: r.height };
    }
    let layout = this.layouts.get(key);
    if (layout === undefined) {
      layout = new MapLayout();
      this.layouts.set(key, layout);
    }
    let shownEdges = map.edges;
    let shown = map.workloads;
    if (namespace !== '') {
      const inNs = new Set(map.workloads.filter((w) => w.namespace === namespace).map((w) => w.id));
      shownEdges = map.edges.filter((e) => inNs.has(e.source) || inNs.has(e.destination));
      const ids = new Set(inNs);
      for (const e of shownEdges) { ids.add(e.source); ids.add(e.destination); }
      shown = map.workloads.filter((w) => ids.has(w.id));
    }
    const known = new Set(shown.map((w) => w.id));
    // An edge may name an end the workload list does not (yet) have: draw it as a card anyway.
    for (const e of shownEdges) for (const id of [e.source, e.destination]) {
      if (!known.has(id)) { known.add(id); shown = [...shown, stubWorkload(id)]; }
    }
    layout.place(shown, this.size.width > 0 && this.size.height > 0 ? this.size.width / this.size.height : 1.6);
    this.workloads = new Map(shown.map((w) => [w.id, w]));
    this.edgeData = new Map(shownEdges.map((e) => [e.id, e]));
    const labels = shownEdges.length <= LABEL_LIMIT && shown.length <= 2 * LABEL_LIMIT;
    const full = key !== this.drawnKey || labels !== this.labels;
    const moved = layout.version !== this.drawnVersion;
    if (full) this.clear();
    this.labels = labels;
    this.drawnKey = key;
    this.drawnVersion = layout.version;
    const namespaces = new Set(shown.map((w) => w.namespace));
    this.sync(this.boxes, this.gBoxes, [...namespaces].map((ns) => [ns, ns] as const), moved, boxLayer(layout));
    this.sync(this.nodes, this.gNodes, shown.map((w) => [w.id, w] as const), moved, nodeLayer(layout, labels));
    const spots = labels ? labelSpots(layout, shownEdges, shown.map((w) => w.id)) : new Map<string, Point>();
    this.sync(this.edges, this.gEdges, labels ? shownEdges.map((e) => [e.id, e] as const) : [], moved, edgeLayer(layout, spots, this.widths));
    this.leanEdges = labels ? [] : shownEdges;
    this.leanLayout = layout;
    if (this.svg.classList.contains('lean') === labels) this.svg.classList.toggle('lean', !labels);
    if (!this.userMoved || full) {
      if (full) this.userMoved = false;
      this.setView(layout.bounds(namespace === '' ? undefined : namespaces));
    }
    // Painted now, in the frame the SVG changes go out with.
    this.paintEdges();
    return { workloads: shown.length, edges: shownEdges.length };
  }

  fit(): void {
    this.userMoved = false;
    const layout = this.layouts.get(this.drawnKey);
    if (layout) this.setView(layout.bounds(new Set([...this.workloads.values()].map((w) => w.namespace))));
  }

  private clear(): void {
    for (const m of [this.nodes, this.edges, this.boxes]) m.clear();
    this.gBoxes.textContent = '';
    this.gEdges.textContent = '';
    this.gNodes.textContent = '';
  }

  /**
   * Brings one layer in line with `items`: unchanged elements are left alone,
   * restyled ones patched in place, reshaped ones replaced, new ones added in one batch.
   */
  private sync<T>(drawn: Map<string, Drawn>, layer: SVGGElement, items: (readonly [string, T])[], moved: boolean, spec: LayerSpec<T>): void {
    const keep = new Set<string>();
    let batch = '';
    const replace: Drawn[] = [];
    let replaceHtml = '';
    for (const [id, item] of items) {
      keep.add(id);
      const old = drawn.get(id);
      if (old === undefined) {
        batch += spec.html(item);
        drawn.set(id, { el: null, shape: spec.stableShape ? '' : spec.shape(item), style: spec.style(item) });
        continue;
      }
      const shape = spec.stableShape && !moved ? old.shape : spec.shape(item);
      if (moved || old.shape !== shape) {
        replace.push(old);
        replaceHtml += spec.html(item);
        old.shape = shape;
        old.style = spec.style(item);
        continue;
      }
      const style = spec.style(item);
      if (style !== old.style && old.el) { spec.patch(old.el, item); old.style = style; }
    }
    for (const [id, d] of drawn) if (!keep.has(id)) { d.el?.remove(); drawn.delete(id); }
    if (replace.length > 0) {
      const fresh = parse(replaceHtml);
      replace.forEach((d, i) => { const el = fresh[i]; if (el && d.el) { d.el.replaceWith(el); d.el = el; } });
    }
    if (batch !== '') {
      // An empty layer (the first draw) parses its markup in place: no moving thousands of elements after.
      const inPlace = layer.childElementCount === 0;
      if (inPlace) layer.innerHTML = batch;
      const fresh = inPlace ? ([...layer.children] as SVGGElement[]) : parse(batch);
      const frag = inPlace ? null : document.createDocumentFragment();
      for (const el of fresh) {
        const d = drawn.get(el.getAttribute('data-id') ?? '');
        if (d) d.el = el;
        frag?.appendChild(el);
      }
      if (frag) layer.appendChild(frag);
    }
  }

  private setView(v: { x: number; y: number; w: number; h: number }): void {
    const aspect = this.size.width > 0 && this.size.height > 0 ? this.size.width / this.size.height : 1.6;
    let { x, y, w, h } = v;
    // Keep the content's proportions: widen whichever side is short for the viewport.
    if (w / h > aspect) { const nh = w / aspect; y -= (nh - h) / 2; h = nh; } else { const nw = h * aspect; x -= (nw - w) / 2; w = nw; }
    // A small map is not blown up past 1.2× (cards the size of headings read worse, not better).
    const minW = this.size.width / 1.2;
    if (this.size.width > 0 && w < minW) { const k = minW / w; x -= (w * k - w) / 2; y -= (h * k - h) / 2; w *= k; h *= k; }
    this.view = { x, y, w, h };
    const box = `${x.toFixed(1)} ${y.toFixed(1)} ${w.toFixed(1)} ${h.toFixed(1)}`;
    if (this.svg.getAttribute('viewBox') !== box) { this.svg.setAttribute('viewBox', box); this.queuePaint(); }
    this.zoomClasses();
  }

  private queuePaint(): void {
    if (this.paintQueued) return;
    this.paintQueued = true;
    requestAnimationFrame(() => { this.paintQueued = false; this.paintEdges(); });
  }

  /** Map units → canvas pixels, as the SVG's viewBox (preserveAspectRatio xMidYMid meet) maps them. */
  private transform(): { s: number; ox: number; oy: number } {
    const { width, height } = this.size;
    const v = this.view;
    const s = Math.min(width / v.w, height / v.h);
    return { s, ox: (width - v.w * s) / 2 - v.x * s, oy: (height - v.h * s) / 2 - v.y * s };
  }

  /**
   * Lean drawing: box grounds, then every edge, on the canvas under the SVG (whose
   * boxes are then drawn without fill). Edges of one look go in one path, stroked once.
   */
  private paintEdges(): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const pw = Math.round(this.size.width * dpr), ph = Math.round(this.size.height * dpr);
    const layout = this.leanLayout;
    const empty = this.leanEdges.length === 0 || layout === null || pw === 0 || ph === 0;
    if (empty) {
      this.segments = [];
      this.painted.clear();
      this.paintedView = '';
      if (c.width > 0) { c.width = 0; c.height = 0; }
      return;
    }
    const { s, ox, oy } = this.transform();
    const groups = new Map<string, Segment[]>();
    const tunnels: Segment[] = [];
    const segments: Segment[] = [];
    // A canvas repaint costs the browser a whole bitmap to hand to the compositor (tens of ms in
    // software): skipped when no edge changed its look and the view did not move.
    const view = `${pw}x${ph}|${s},${ox},${oy}|${layout.version}|${this.workloads.size}`;
    let same = view === this.paintedView && this.painted.size === this.leanEdges.length;
    const looks = new Map<string, string>();
    for (const e of this.leanEdges) {
      const a = layout.position(e.source), b = layout.position(e.destination);
      if (!a || !b) continue;
      const seg = e.source === e.destination
        ? { e, sx: a.x + CARD_W, sy: a.y + CARD_H / 2 - 8, tx: a.x + CARD_W, ty: a.y + CARD_H / 2 + 8 }
        : straight(e, a, b);
      segments.push(seg);
      const width = edgeWidth(e, this.widths.get(e.id));
      this.widths.set(e.id, width);
      const key = `${edgeClass(e)}|${width}|${e.rate > 0 ? 1 : 0}`;
      const look = `${key}|${e.tunnelled}`;
      looks.set(e.id, look);
      if (same && this.painted.get(e.id) !== look) same = false;
      let g = groups.get(key);
      if (g === undefined) { g = []; groups.set(key, g); }
      g.push(seg);
      if (e.tunnelled) tunnels.push(seg);
    }
    this.segments = segments;
    if (same) return;
    this.paintedView = view;
    this.painted = looks;
    if (c.width !== pw || c.height !== ph) { c.width = pw; c.height = ph; }
    const ctx = c.getContext('2d');
    if (ctx === null) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, pw, ph);
    ctx.setTransform(dpr * s, 0, 0, dpr * s, dpr * ox, dpr * oy);
    const shownNs = new Set<string>();
    for (const w of this.workloads.values()) shownNs.add(w.namespace);
    for (const b of layout.boxes.values()) {
      if (!shownNs.has(b.ns)) continue;
      ctx.fillStyle = b.ns === 'world' || b.ns === 'host' || b.ns === 'reserved' ? '#fbf7ff' : '#f6f8fa';
      ctx.fillRect(b.x, b.y, b.w, b.h);
    }
    const arrows = s >= 0.4;
    for (const [key, segs] of groups) {
      const [cls = 'fwd', width = '1.5', active] = key.split('|');
      const colour = EDGE_COLOURS[cls] ?? '#bf8700';
      ctx.globalAlpha = active === '1' ? 0.55 : 0.3;
      ctx.strokeStyle = colour;
      ctx.lineWidth = Number(width);
      ctx.setLineDash(cls === 'drop' ? [7, 4] : []);
      ctx.beginPath();
      for (const g of segs) {
        ctx.moveTo(g.sx, g.sy);
        if (g.e.source === g.e.destination) ctx.bezierCurveTo(g.sx + 40, g.sy - 32, g.tx + 40, g.ty + 32, g.tx, g.ty);
        else ctx.lineTo(g.tx, g.ty);
      }
      ctx.stroke();
      if (!arrows) continue;
      ctx.fillStyle = colour;
      ctx.beginPath();
      for (const g of segs) {
        const dx = g.tx - g.sx, dy = g.ty - g.sy, len = Math.hypot(dx, dy) || 1;
        const ux = dx / len, uy = dy / len;
        ctx.moveTo(g.tx, g.ty);
        ctx.lineTo(g.tx - ux * 10 - uy * 5, g.ty - uy * 10 + ux * 5);
        ctx.lineTo(g.tx - ux * 10 + uy * 5, g.ty - uy * 10 - ux * 5);
        ctx.closePath();
      }
      ctx.fill();
    }
    if (tunnels.length > 0) {
      ctx.globalAlpha = 0.9;
      ctx.strokeStyle = EDGE_COLOURS['tunnel'] ?? '#8250df';
      ctx.lineWidth = 1.4;
      ctx.setLineDash([2, 3]);
      ctx.beginPath();
      for (const g of tunnels) { ctx.moveTo(g.sx, g.sy - 4); ctx.lineTo(g.tx, g.ty - 4); }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);
  }

  /** The lean edge nearest a client point, within a few pixels. */
  private edgeAt(clientX: number, clientY: number): Edge | null {
    if (this.segments.length === 0) return null;
    const r = this.svg.getBoundingClientRect();
    const { s, ox, oy } = this.transform();
    const x = (clientX - r.left - ox) / s, y = (clientY - r.top - oy) / s;
    let best: Edge | null = null, bestD = 6 / s;
    for (const g of this.segments) {
      const d = segmentDistance(x, y, g.sx, g.sy, g.tx, g.ty);
      if (d < bestD) { bestD = d; best = g.e; }
    }
    return best;
  }

  /**
   * Semantic zoom: text too small to read (a whole map of thousands of workloads)
   * is not drawn at all, which spares the browser laying out thousands of labels.
   */
  private zoomClasses(): void {
    const scale = this.size.width > 0 ? this.size.width / this.view.w : 1;
    const far = scale < 0.4, veryFar = scale < 0.3;
    if (this.svg.classList.contains('far') !== far) this.svg.classList.toggle('far', far);
    if (this.svg.classList.contains('very-far') !== veryFar) this.svg.classList.toggle('very-far', veryFar);
  }

  private wirePointer(): void {
    let drag: { x: number; y: number; vx: number; vy: number; moved: boolean } | null = null;
    this.svg.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const r = this.svg.getBoundingClientRect();
      const k = Math.exp(ev.deltaY * 0.0015);
      const px = this.view.x + ((ev.clientX - r.left) / r.width) * this.view.w;
      const py = this.view.y + ((ev.clientY - r.top) / r.height) * this.view.h;
      this.userMoved = true;
      this.view = { x: px - (px - this.view.x) * k, y: py - (py - this.view.y) * k, w: this.view.w * k, h: this.view.h * k };
      this.svg.setAttribute('viewBox', `${this.view.x} ${this.view.y} ${this.view.w} ${this.view.h}`);
      this.zoomClasses();
      this.queuePaint();
    }, { passive: false });
    this.svg.addEventListener('pointerdown', (ev) => {
      drag = { x: ev.clientX, y: ev.clientY, vx: this.view.x, vy: this.view.y, moved: false };
    });
    this.svg.addEventListener('pointermove', (ev) => {
      if (drag === null) return;
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      drag.moved = true;
      this.userMoved = true;
      const r = this.svg.getBoundingClientRect();
      this.view.x = drag.vx - (dx / r.width) * this.view.w;
      this.view.y = drag.vy - (dy / r.height) * this.view.h;
      this.svg.setAttribute('viewBox', `${this.view.x} ${this.view.y} ${this.view.w} ${this.view.h}`);
      this.queuePaint();
    });
    this.svg.addEventListener('pointerup', () => { setTimeout(() => { drag = null; }, 0); });
    // Tooltips are made on hover from the current data: thousands of <title>s kept up to date would cost every update.
    this.svg.addEventListener('mouseover', (ev) => {
      const target = ev.target as Element;
      const node = target.closest('[data-workload]');
      const edge = node ? null : target.closest('[data-edge]');
      const host = node ?? edge;
      if (!host) return;
      const w = node ? this.workloads.get(node.getAttribute('data-workload') ?? '') : undefined;
      const e = edge ? this.edgeData.get(edge.getAttribute('data-edge') ?? '') : undefined;
      const text = w ? nodeTip(w) : e ? edgeTip(e) : '';
      titleOf(host).textContent = text;
    });
    this.svg.addEventListener('click', (ev) => {
      if (drag?.moved) return;
      const target = ev.target as Element;
      const node = target.closest('[data-workload]');
      const edge = target.closest('[data-edge]');
      if (node) { const w = this.workloads.get(node.getAttribute('data-workload') ?? ''); if (w) this.handlers.node(w); return; }
      if (edge) { const e = this.edgeData.get(edge.getAttribute('data-edge') ?? ''); if (e) this.handlers.edge(e); return; }
      const lean = this.edgeAt(ev.clientX, ev.clientY);
      if (lean) this.handlers.edge(lean);
    });
    // Lean edges have no element to hover: the nearest one under the pointer gets the cursor and the map's tooltip.
    let hoverQueued = false;
    let hovered: Edge | null = null;
    this.svg.addEventListener('mousemove', (ev) => {
      if (this.segments.length === 0 || hoverQueued || drag?.moved) return;
      hoverQueued = true;
      const { clientX, clientY, target } = ev;
      requestAnimationFrame(() => {
        hoverQueued = false;
        const over = (target as Element).closest('[data-workload]') ? null : this.edgeAt(clientX, clientY);
        if (over === hovered) return;
        hovered = over;
        this.svg.classList.toggle('on-edge', over !== null);
        if (over === null) { this.svg.querySelector(':scope > title')?.remove(); return; }
        titleOf(this.svg).textContent = edgeTip(over);
      });
    });
  }
}

/** An element's own <title> (its tooltip), made when it has none. */
function titleOf(host: Element): Element {
  let title = host.querySelector(':scope > title');
  if (!title) { title = document.createElementNS(SVG_NS, 'title'); host.prepend(title); }
  return title;
}

function stubWorkload(id: string): Workload {
  const slash = id.indexOf('/');
  const namespace = slash > 0 ? id.slice(0, slash) : 'world';
  const kind = namespace === 'world' ? 'world' : namespace === 'host' ? 'host' : namespace === 'reserved' ? 'reserved' : 'pod';
  return { id, namespace, name: slash > 0 ? id.slice(slash + 1) : id, kind, pods: 0, labels: [], endpoints: [] };
}

function parse(markup: string): SVGGElement[] {
  const tmp = document.createElementNS(SVG_NS, 'g');
  tmp.innerHTML = markup;
  return [...tmp.children] as SVGGElement[];
}

function boxLayer(layout: MapLayout): LayerSpec<string> {
  return {
    stableShape: true,
    shape: (ns) => { const b = layout.boxes.get(ns); return b ? `${b.x},${b.y},${b.w},${b.h}` : ''; },
    style: () => '',
    patch: () => {},
    html: (ns) => {
      const b = layout.boxes.get(ns) ?? { x: 0, y: 0, w: 0, h: 0 };
      const special = ns === 'world' || ns === 'host' || ns === 'reserved';
      return `<g data-id="${esc(ns)}" data-testid="map-namespace" data-namespace="${esc(ns)}" class="ns-box${special ? ' ns-special' : ''}">`
        + `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="10"/>`
        + `<text x="${b.x + 12}" y="${b.y + 19}" class="ns-label">${esc(ns)}</text></g>`;
    },
  };
}

function nodeSub(w: Workload): string {
  if (w.kind !== 'pod') return w.kind === 'world' ? 'external' : w.kind;
  const eps = w.endpoints.length;
  return `${w.pods} pod${w.pods === 1 ? '' : 's'}${eps > 0 ? ` · ${eps} endpoint${eps === 1 ? '' : 's'}` : ''}`;
}

function nodeTip(w: Workload): string {
  return [w.id, nodeSub(w), ...w.labels, ...w.endpoints.slice(0, 10).map((e) => `${e.method} ${e.path} ×${e.count}`)].join('\n');
}

function nodeLayer(layout: MapLayout, detailed: boolean): LayerSpec<Workload> {
  return {
    stableShape: true,
    shape: (w) => { const p = layout.position(w.id); return `${p?.x},${p?.y},${w.name}`; },
    style: (w) => (detailed ? nodeSub(w) : ''),
    patch: (el, w) => { const sub = el.querySelector('.node-sub'); if (sub) sub.textContent = nodeSub(w); },
    html: (w) => {
      const p = layout.position(w.id) ?? { x: 0, y: 0 };
      const name = w.name.length > 22 ? `${w.name.slice(0, 21)}…` : w.name;
      return `<g data-id="${esc(w.id)}" data-testid="map-node" data-workload="${esc(w.id)}" class="node node-${w.kind}" transform="translate(${p.x},${p.y})">`
        + `<rect width="${CARD_W}" height="${CARD_H}" rx="6"/>`
        + (detailed ? `<text x="10" y="17" class="node-name">${esc(name)}</text><text x="10" y="32" class="node-sub">${esc(nodeSub(w))}</text></g>`
          : `<text x="10" y="25" class="node-name">${esc(name)}</text></g>`);
    },
  };
}

function edgeClass(e: Edge): string {
  return e.verdict === 'forwarded' ? 'fwd' : e.verdict === 'dropped' ? 'drop' : 'mixed';
}

function edgeClasses(e: Edge): string {
  return `edge edge-${edgeClass(e)}${e.tunnelled ? ' edge-tunnelled' : ''}${e.rate > 0 ? '' : ' edge-idle'}`;
}

const WIDTHS = ['1.5', '2.5', '3.5', '5'];
const WIDTH_BOUNDS = [1, 10, 100];

/**
 * Stroke width by rate, in four steps with some slack at each bound: a width change
 * makes the browser lay the whole SVG out again, so a rate wavering around a bound
 * must not flip it every update. `prev` is the width the edge has now.
 */
function edgeWidth(e: Edge, prev?: string): string {
  const step = WIDTH_BOUNDS.filter((b) => e.rate >= b).length;
  const was = prev === undefined ? -1 : WIDTHS.indexOf(prev);
  if (was >= 0 && Math.abs(step - was) === 1) {
    const bound = WIDTH_BOUNDS[Math.min(step, was)] ?? 1;
    if (e.rate > bound / 1.5 && e.rate < bound * 1.5) return prev ?? '';
  }
  return WIDTHS[step] ?? '5';
}

function edgeLabel(e: Edge): string {
  const badges = [e.l7 ? 'L7' : '', e.dns ? 'DNS' : '', e.tunnelled ? 'mTLS' : ''].filter(Boolean);
  // Idle: seen, but nothing in the rate window.
  return `${e.rate > 0 ? rate(e.rate) : 'idle'}${badges.length ? ` ${badges.join(' ')}` : ''}`;
}

function edgeTip(e: Edge): string {
  return `${e.source} → ${e.destination}\n${e.ports.join(', ')}\n${e.verdict}: ${e.forwarded} forwarded, ${e.dropped} dropped, ${rate(e.rate)}`
    + `${e.l7 ? '\nL7 (HTTP) records' : ''}${e.dns ? '\nDNS' : ''}${e.tunnelled ? '\nthrough the mTLS tunnel' : ''}`;
}

/**
 * Where each edge's label goes: its curve's label point, nudged up or down until it
 * covers no card and no label placed before it (edges in id order, so placement is
 * stable); at most three steps each way, as a label far from its edge misleads.
 */
function labelSpots(layout: MapLayout, edges: Edge[], cards: string[]): Map<string, Point> {
  const W = 76, H = 17, STEP = H + 2;
  type Rect = { x: number; y: number; w: number; h: number };
  const taken: Rect[] = [];
  for (const id of cards) {
    const p = layout.position(id);
    if (p) taken.push({ x: p.x + CARD_W / 2, y: p.y + CARD_H / 2, w: CARD_W, h: CARD_H });
  }
  const free = (x: number, y: number): boolean => taken.every((r) => Math.abs(r.x - x) * 2 >= r.w + W || Math.abs(r.y - y) * 2 >= r.h + H);
  const spots = new Map<string, Point>();
  for (const e of [...edges].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const a = layout.position(e.source);
    const b = layout.position(e.destination);
    if (!a || !b) continue;
    const mid = curve(a, b, e.source === e.destination).mid;
    let spot = mid;
    for (let i = 0; i <= 6; i++) {
      const dy = (i % 2 === 0 ? 1 : -1) * Math.ceil(i / 2) * STEP;
      if (free(mid.x, mid.y + dy)) { spot = { x: mid.x, y: mid.y + dy }; break; }
    }
    taken.push({ x: spot.x, y: spot.y, w: W, h: H });
    spots.set(e.id, spot);
  }
  return spots;
}

const EDGE_COLOURS: Record<string, string> = { fwd: '#1a7f37', drop: '#cf222e', mixed: '#bf8700', tunnel: '#8250df' };

/** A lean edge: a straight line between the cards' facing sides (cheap to stroke thousands of times over). */
function straight(e: Edge, a: Point, b: Point): Segment {
  return {
    e,
    sx: a.x + CARD_W / 2, sy: a.y + (b.y > a.y ? CARD_H : b.y < a.y ? 0 : CARD_H / 2),
    tx: b.x + CARD_W / 2, ty: b.y + (b.y > a.y ? 0 : b.y < a.y ? CARD_H : CARD_H / 2),
  };
}

function segmentDistance(x: number, y: number, sx: number, sy: number, tx: number, ty: number): number {
  const dx = tx - sx, dy = ty - sy;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((x - sx) * dx + (y - sy) * dy) / len2));
  return Math.hypot(x - (sx + t * dx), y - (sy + t * dy));
}

/** The labelled (SVG) edges of a map small enough to read; a lean map's edges are on the canvas. */
function edgeLayer(layout: MapLayout, spots: Map<string, Point>, widths: Map<string, string>): LayerSpec<Edge> {
  const geometry = (e: Edge): { d: string; mid: Point } | null => {
    const a = layout.position(e.source);
    const b = layout.position(e.destination);
    return a && b ? curve(a, b, e.source === e.destination) : null;
  };
  const labelWidth = (text: string): number => 7 * text.length + 10;
  return {
    // Label spots can shift when edges come and go.
    stableShape: false,
    shape: (e) => { const p = spots.get(e.id); return `${geometry(e)?.d ?? ''}|${e.tunnelled}|${p ? `${p.x},${p.y}` : ''}`; },
    style: (e) => `${edgeClasses(e)},${edgeWidth(e, widths.get(e.id))},${edgeLabel(e)}`,
    patch: (el, e) => {
      const cls = edgeClass(e);
      el.setAttribute('class', edgeClasses(e));
      el.setAttribute('data-verdict', e.verdict);
      const line = el.querySelector('.edge-line');
      const width = edgeWidth(e, widths.get(e.id));
      widths.set(e.id, width);
      const marker = `url(#arrow-${cls})`;
      if (line && line.getAttribute('stroke-width') !== width) line.setAttribute('stroke-width', width);
      if (line && line.getAttribute('marker-end') !== marker) line.setAttribute('marker-end', marker);
      const text = el.querySelector('.edge-label');
      const bg = el.querySelector('.edge-label-bg');
      const label = edgeLabel(e);
      if (text) text.textContent = label;
      if (bg) {
        const w = labelWidth(label);
        const x = Number(bg.getAttribute('x')) + Number(bg.getAttribute('width')) / 2;
        bg.setAttribute('x', (x - w / 2).toFixed(1));
        bg.setAttribute('width', String(w));
      }
    },
    html: (e) => {
      const g = geometry(e);
      if (g === null) return `<g data-id="${esc(e.id)}"></g>`;
      const cls = edgeClass(e);
      const d = g.d;
      const mid = spots.get(e.id) ?? g.mid;
      const width = edgeWidth(e, widths.get(e.id));
      widths.set(e.id, width);
      let html = `<g data-id="${esc(e.id)}" data-testid="map-edge" data-edge="${esc(e.id)}" data-verdict="${e.verdict}" class="${edgeClasses(e)}">`
        + `<path class="edge-hit" d="${d}"/><path class="edge-line" d="${d}" stroke-width="${width}" marker-end="url(#arrow-${cls})"/>`;
      if (e.tunnelled) html += `<path class="edge-tunnel" d="${d}"/>`;
      const label = edgeLabel(e);
      const w = labelWidth(label);
      html += `<rect class="edge-label-bg" x="${(mid.x - w / 2).toFixed(1)}" y="${(mid.y - 9).toFixed(1)}" width="${w}" height="16" rx="4"/>`
        + `<text class="edge-label" x="${mid.x.toFixed(1)}" y="${(mid.y + 3).toFixed(1)}" text-anchor="middle">${esc(label)}</text>`;
      return `${html}</g>`;
    },
  };
}

/**
 * The edge's path: side to side between cards in different columns, an arc over
 * (or, right to left, under) the row between cards of one row so it does not run
 * through the cards between, a bow to the right within one column, a loop for a self edge.
 */
function curve(a: Point, b: Point, self: boolean): { d: string; mid: Point } {
  if (self) {
    const x = a.x + CARD_W, y = a.y + CARD_H / 2;
    return { d: `M${x},${y - 8}C${x + 40},${y - 40} ${x + 40},${y + 40} ${x},${y + 8}`, mid: { x: x + 30, y } };
  }
  const rightward = b.x > a.x;
  if (Math.abs(a.y - b.y) < 1) {
    const gap = Math.abs(b.x - a.x) - CARD_W;
    // Over the row both ways (under it would cross the next shelf); a right-to-left edge flies higher.
    const sx = a.x + CARD_W / 2 + (rightward ? 12 : -12), tx = b.x + CARD_W / 2 + (rightward ? -12 : 12);
    const lift = Math.min(110, 34 + gap * 0.12) * (rightward ? 1 : 1.45);
    const sy = a.y;
    const cy = sy - lift * 1.33;
    return { d: `M${sx},${sy}C${sx},${cy} ${tx},${cy} ${tx},${sy}`, mid: { x: (sx + tx) / 2, y: sy - lift } };
  }
  if (Math.abs(a.x - b.x) < CARD_W / 2) {
    const bx = a.x + CARD_W, sy = a.y + CARD_H / 2, ty = b.y + CARD_H / 2;
    const bow = 30 + Math.min(120, Math.abs(ty - sy) / 4);
    return { d: `M${bx},${sy}C${bx + bow},${sy} ${bx + bow},${ty} ${bx},${ty}`, mid: { x: bx + bow * 0.75, y: (sy + ty) / 2 } };
  }
  // Rows apart: leave and enter through the cards' bottom and top, so the curve crosses
  // the gaps between shelves rather than the cards beside it.
  const down = b.y > a.y;
  const sx = a.x + CARD_W / 2, tx = b.x + CARD_W / 2;
  const sy = down ? a.y + CARD_H : a.y, ty = down ? b.y : b.y + CARD_H;
  const dy = Math.max(40, Math.abs(ty - sy) / 2) * (down ? 1 : -1);
  // The label sits 40% of the way along, so edges into one card from one column do not stack their labels.
  return { d: `M${sx},${sy}C${sx},${sy + dy} ${tx},${ty - dy} ${tx},${ty}`, mid: bezier(0.4, sx, sy, sx, sy + dy, tx, ty - dy, tx, ty) };
}

function bezier(t: number, x0: number, y0: number, x1: number, y1: number, x2: number, y2: number, x3: number, y3: number): Point {
  const u = 1 - t;
  const a = u * u * u, b = 3 * u * u * t, c = 3 * u * t * t, d = t * t * t;
  return { x: a * x0 + b * x1 + c * x2 + d * x3, y: a * y0 + b * y1 + c * y2 + d * y3 };
}
