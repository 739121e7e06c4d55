/**
 * The service map: one SVG, namespaces as boxes, workloads as cards, edges as
 * curves coloured by verdict. The first draw is one markup string (fast for
 * thousands of elements); updates reuse the elements and touch only what changed.
 */
import type { Edge, ServiceMap, Workload } from '../../src/ui/api.ts';
import { esc, rate } from './dom.ts';
import { CARD_H, CARD_W, MapLayout, type Point } from './layout.ts';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Above this many edges the rate labels go into tooltips: thousands of labels are unreadable and slow. */
const LABEL_LIMIT = 400;

export interface MapHandlers {
  node: (w: Workload) => void;
  edge: (e: Edge) => void;
}

interface Drawn { el: SVGGElement; sig: string }

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
  private workloads = new Map<string, Workload>();
  private edgeData = new Map<string, Edge>();

  constructor(private readonly svg: SVGSVGElement, private readonly handlers: MapHandlers) {
    svg.innerHTML = `<defs>${['fwd', 'drop', 'mixed'].map((v) => `<marker id="arrow-${v}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" class="arrow-${v}"/></marker>`).join('')}</defs>`
      + '<g class="boxes"></g><g class="edges"></g><g class="nodes"></g>';
    this.gBoxes = svg.querySelector('g.boxes') as SVGGElement;
    this.gEdges = svg.querySelector('g.edges') as SVGGElement;
    this.gNodes = svg.querySelector('g.nodes') as SVGGElement;
    this.wirePointer();
  }

  /** Draws the map for `namespace` ('' = every namespace). Returns how many workloads and edges are shown. */
  render(map: ServiceMap, namespace: string): { workloads: number; edges: number } {
    const key = namespace || '*';
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
    layout.place(shown);
    this.workloads = new Map(shown.map((w) => [w.id, w]));
    this.edgeData = new Map(shownEdges.map((e) => [e.id, e]));
    const labels = shownEdges.length <= LABEL_LIMIT;
    const full = key !== this.drawnKey || labels !== this.labels;
    const moved = layout.version !== this.drawnVersion;
    if (full) this.clear();
    this.labels = labels;
    this.drawnKey = key;
    this.drawnVersion = layout.version;
    const namespaces = new Set(shown.map((w) => w.namespace));
    this.sync(this.boxes, this.gBoxes, [...namespaces].map((ns) => [ns, ns] as const), moved, (ns) => boxMarkup(layout, ns));
    this.sync(this.nodes, this.gNodes, shown.map((w) => [w.id, w] as const), moved, (w) => nodeMarkup(layout, w));
    this.sync(this.edges, this.gEdges, shownEdges.map((e) => [e.id, e] as const), moved, (e) => edgeMarkup(layout, e, labels));
    if (!this.userMoved || full) {
      if (full) this.userMoved = false;
      this.setView(layout.bounds(namespace === '' ? undefined : namespaces));
    }
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
   * Brings one layer in line with `items`: markup whose signature is unchanged is
   * left alone, changed elements are replaced, new ones arrive in one batch.
   */
  private sync<T>(drawn: Map<string, Drawn>, layer: SVGGElement, items: (readonly [string, T])[], moved: boolean, markup: (item: T) => [string, string]): void {
    const keep = new Set<string>();
    let batch = '';
    const replace: [Drawn, string][] = [];
    for (const [id, item] of items) {
      keep.add(id);
      const old = drawn.get(id);
      const [sig, html] = markup(item);
      if (old === undefined) batch += html;
      else if (moved || old.sig !== sig) replace.push([old, html]);
      if (old) old.sig = sig;
      else drawn.set(id, { el: null as unknown as SVGGElement, sig });
    }
    for (const [id, d] of drawn) if (!keep.has(id)) { d.el?.remove(); drawn.delete(id); }
    if (replace.length > 0) {
      const tmp = document.createElementNS(SVG_NS, 'g');
      tmp.innerHTML = replace.map(([, html]) => html).join('');
      const fresh = [...tmp.children] as SVGGElement[];
      replace.forEach(([d], i) => { const el = fresh[i]; if (el && d.el) { d.el.replaceWith(el); d.el = el; } });
    }
    if (batch !== '') {
      const tmp = document.createElementNS(SVG_NS, 'g');
      tmp.innerHTML = batch;
      const fresh = [...tmp.children] as SVGGElement[];
      const frag = document.createDocumentFragment();
      for (const el of fresh) {
        const id = el.getAttribute('data-id') ?? '';
        const d = drawn.get(id);
        if (d) d.el = el;
        frag.appendChild(el);
      }
      layer.appendChild(frag);
    }
  }

  private setView(v: { x: number; y: number; w: number; h: number }): void {
    const box = this.svg.getBoundingClientRect();
    const aspect = box.width > 0 && box.height > 0 ? box.width / box.height : 1.6;
    let { x, y, w, h } = v;
    // Keep the content's proportions: widen whichever side is short for the viewport.
    if (w / h > aspect) { const nh = w / aspect; y -= (nh - h) / 2; h = nh; } else { const nw = h * aspect; x -= (nw - w) / 2; w = nw; }
    this.view = { x, y, w, h };
    this.svg.setAttribute('viewBox', `${x.toFixed(1)} ${y.toFixed(1)} ${w.toFixed(1)} ${h.toFixed(1)}`);
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
    });
    this.svg.addEventListener('pointerup', () => { setTimeout(() => { drag = null; }, 0); });
    this.svg.addEventListener('click', (ev) => {
      if (drag?.moved) return;
      const target = ev.target as Element;
      const node = target.closest('[data-workload]');
      const edge = target.closest('[data-edge]');
      if (node) { const w = this.workloads.get(node.getAttribute('data-workload') ?? ''); if (w) this.handlers.node(w); return; }
      if (edge) { const e = this.edgeData.get(edge.getAttribute('data-edge') ?? ''); if (e) this.handlers.edge(e); }
    });
  }
}

function stubWorkload(id: string): Workload {
  const slash = id.indexOf('/');
  const namespace = slash > 0 ? id.slice(0, slash) : 'world';
  const kind = namespace === 'world' ? 'world' : namespace === 'host' ? 'host' : namespace === 'reserved' ? 'reserved' : 'pod';
  return { id, namespace, name: slash > 0 ? id.slice(slash + 1) : id, kind, pods: 0, labels: [], endpoints: [] };
}

function boxMarkup(layout: MapLayout, ns: string): [string, string] {
  const b = layout.boxes.get(ns);
  if (b === undefined) return ['', ''];
  const sig = `${b.x},${b.y},${b.w},${b.h}`;
  const special = ns === 'world' || ns === 'host' || ns === 'reserved';
  return [sig, `<g data-id="${esc(ns)}" data-testid="map-namespace" data-namespace="${esc(ns)}" class="ns-box${special ? ' ns-special' : ''}">`
    + `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="10"/>`
    + `<text x="${b.x + 12}" y="${b.y + 19}" class="ns-label">${esc(ns === 'world' ? 'world (outside the cluster)' : ns)}</text></g>`];
}

function nodeMarkup(layout: MapLayout, w: Workload): [string, string] {
  const p = layout.position(w.id) ?? { x: 0, y: 0 };
  const sub = w.kind === 'world' ? 'external' : w.kind === 'host' ? 'host' : w.kind === 'reserved' ? 'reserved' : `${w.pods} pod${w.pods === 1 ? '' : 's'}${w.endpoints.length > 0 ? ` · ${w.endpoints.length} endpoint${w.endpoints.length === 1 ? '' : 's'}` : ''}`;
  const sig = `${p.x},${p.y},${sub},${w.name}`;
  const name = w.name.length > 22 ? `${w.name.slice(0, 21)}…` : w.name;
  const tip = [w.id, ...w.labels, ...w.endpoints.slice(0, 8).map((e) => `${e.method} ${e.path} ×${e.count}`)].join('\n');
  return [sig, `<g data-id="${esc(w.id)}" data-testid="map-node" data-workload="${esc(w.id)}" class="node node-${w.kind}" transform="translate(${p.x},${p.y})">`
    + `<rect width="${CARD_W}" height="${CARD_H}" rx="6"/>`
    + `<text x="10" y="17" class="node-name">${esc(name)}</text>`
    + `<text x="10" y="32" class="node-sub">${esc(sub)}</text><title>${esc(tip)}</title></g>`];
}

function edgeMarkup(layout: MapLayout, e: Edge, labels: boolean): [string, string] {
  const a = layout.position(e.source);
  const b = layout.position(e.destination);
  if (a === undefined || b === undefined) return ['', `<g data-id="${esc(e.id)}"></g>`];
  const cls = e.verdict === 'forwarded' ? 'fwd' : e.verdict === 'dropped' ? 'drop' : 'mixed';
  const { d, mid } = curve(a, b, e.source === e.destination);
  const width = Math.min(6, 1.3 + Math.log1p(e.rate) * 0.9).toFixed(1);
  const badges = [e.l7 ? 'L7' : '', e.dns ? 'DNS' : '', e.tunnelled ? 'mTLS' : ''].filter(Boolean);
  const label = `${rate(e.rate)}${badges.length ? ` ${badges.join(' ')}` : ''}`;
  const sig = `${d},${cls},${width},${labels ? label : ''},${e.ports.join(',')}`;
  const tip = `${e.source} → ${e.destination}\n${e.ports.join(', ')}\n${e.verdict}: ${e.forwarded} forwarded, ${e.dropped} dropped, ${rate(e.rate)}${badges.length ? `\n${badges.join(', ')}` : ''}`;
  let html = `<g data-id="${esc(e.id)}" data-testid="map-edge" data-edge="${esc(e.id)}" data-verdict="${e.verdict}" class="edge edge-${cls}${e.tunnelled ? ' edge-tunnelled' : ''}">`
    + `<path class="edge-hit" d="${d}"/><path class="edge-line" d="${d}" stroke-width="${width}" marker-end="url(#arrow-${cls})"/>`;
  if (e.tunnelled) html += `<path class="edge-tunnel" d="${d}"/>`;
  if (labels) {
    const text = esc(label);
    const wpx = 7 * label.length + 10;
    html += `<rect class="edge-label-bg" x="${(mid.x - wpx / 2).toFixed(1)}" y="${(mid.y - 9).toFixed(1)}" width="${wpx}" height="16" rx="4"/>`
      + `<text class="edge-label" x="${mid.x.toFixed(1)}" y="${(mid.y + 3).toFixed(1)}" text-anchor="middle">${text}</text>`;
  }
  html += `<title>${esc(tip)}</title></g>`;
  return [sig, html];
}

/** A horizontal S-curve from the source card's right side to the destination's left (a loop for a self edge). */
function curve(a: Point, b: Point, self: boolean): { d: string; mid: Point } {
  if (self) {
    const x = a.x + CARD_W, y = a.y + CARD_H / 2;
    return { d: `M${x},${y - 8}C${x + 40},${y - 40} ${x + 40},${y + 40} ${x},${y + 8}`, mid: { x: x + 30, y } };
  }
  const forward = b.x >= a.x + CARD_W / 2;
  const sx = forward ? a.x + CARD_W : a.x;
  const tx = forward ? b.x : b.x + CARD_W;
  const sy = a.y + CARD_H / 2, ty = b.y + CARD_H / 2;
  const dx = Math.max(40, Math.abs(tx - sx) / 2) * (forward ? 1 : -1);
  const sameColumn = Math.abs(a.x - b.x) < 1;
  // Cards stacked in one column: bow the curve out to the right so it does not run through the cards between.
  if (sameColumn) {
    const bx = a.x + CARD_W;
    const bow = 30 + Math.min(120, Math.abs(ty - sy) / 4);
    return { d: `M${bx},${sy}C${bx + bow},${sy} ${bx + bow},${ty} ${bx},${ty}`, mid: { x: bx + bow * 0.75, y: (sy + ty) / 2 } };
  }
  return { d: `M${sx},${sy}C${sx + dx},${sy} ${tx - dx},${ty} ${tx},${ty}`, mid: { x: (sx + tx) / 2, y: (sy + ty) / 2 } };
}
