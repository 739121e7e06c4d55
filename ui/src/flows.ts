/**
 * The Flows view: the newest flows matching the filter (GET /api/flows), then
 * live batches from /api/flows/stream; pause holds new rows back; a click on a
 * row shows the whole record from /api/flows/:id.
 */
import type { FlowRow, FlowsPage } from '../../src/ui/api.ts';
import { byId, esc, getJson } from './dom.ts';
import { filterQuery, filterText, parseFilterText } from './route.ts';
import { COLUMNS, HUBBLE_COLUMNS, headMarkup, rowMarkup } from './rows.ts';

const MAX_ROWS = 500;

export class FlowsView {
  private filters: [string, string][] = [];
  private active = false;
  private paused = false;
  private pending: FlowRow[] = [];
  private rows: FlowRow[] = [];
  private stream: EventSource | null = null;
  private load: AbortController | null = null;
  private readonly input = byId<HTMLInputElement>('flow-filter');
  private readonly body = byId<HTMLTableSectionElement>('flows-body');
  private readonly status = byId('flows-status');
  private readonly error = byId('flows-error');
  private readonly pauseButton = byId<HTMLButtonElement>('flows-pause');
  private readonly detail = byId('flow-detail');
  private readonly detailBody = byId('flow-detail-body');
  private selected = '';

  /** `onFilter` is told the filters the user typed, to put them in the URL. */
  constructor(private readonly onFilter: (filters: [string, string][]) => void) {
    byId('flows-head').innerHTML = headMarkup(HUBBLE_COLUMNS);
    this.wireColumns();
    byId('flows-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.onFilter(parseFilterText(this.input.value));
    });
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') { this.input.value = ''; this.onFilter([]); }
    });
    this.pauseButton.addEventListener('click', () => this.setPaused(!this.paused));
    byId('flow-detail-close').addEventListener('click', () => this.closeDetail());
    this.body.addEventListener('click', (ev) => {
      const tr = (ev.target as Element).closest('tr[data-flow-id]');
      if (tr) void this.showDetail(tr.getAttribute('data-flow-id') ?? '');
    });
  }

  /** Column chooser: hidden columns are a stylesheet rule (no re-render), remembered in localStorage. */
  private wireColumns(): void {
    const key = 'palisade.flows.hiddenColumns';
    let hidden = new Set<string>();
    try { hidden = new Set(JSON.parse(localStorage.getItem(key) ?? '[]') as string[]); } catch { /* none */ }
    const style = document.createElement('style');
    document.head.appendChild(style);
    const apply = (): void => {
      style.textContent = [...hidden].map((c) => `#flows-table .c-${c}{display:none}`).join('\n');
      try { localStorage.setItem(key, JSON.stringify([...hidden])); } catch { /* private mode */ }
    };
    const box = byId('flows-columns-list');
    box.innerHTML = HUBBLE_COLUMNS.map((c) => `<label><input type="checkbox" value="${c}"${hidden.has(c) ? '' : ' checked'}> ${esc(COLUMNS[c]?.title ?? c)}</label>`).join('');
    box.addEventListener('change', (ev) => {
      const input = ev.target as HTMLInputElement;
      if (input.checked) hidden.delete(input.value);
      else hidden.add(input.value);
      apply();
    });
    apply();
  }

  /** Applies filters from the URL (typed or shared). Reloads only when they changed. */
  setFilters(filters: [string, string][]): void {
    const same = filterQuery(filters) === filterQuery(this.filters);
    this.filters = filters;
    if (document.activeElement !== this.input || !same) this.input.value = filterText(filters);
    if (!same && this.active) this.restart();
  }

  setActive(active: boolean): void {
    if (active === this.active) return;
    this.active = active;
    if (active) this.restart();
    else this.stop();
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    this.pauseButton.textContent = paused ? 'Resume' : 'Pause';
    this.pauseButton.classList.toggle('paused', paused);
    this.pauseButton.setAttribute('aria-pressed', String(paused));
    if (!paused && this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      this.prepend(batch);
    }
    this.showStatus();
  }

  private stop(): void {
    this.stream?.close();
    this.stream = null;
    this.load?.abort();
    this.load = null;
  }

  private restart(): void {
    this.stop();
    this.pending = [];
    const qs = filterQuery(this.filters);
    const load = new AbortController();
    this.load = load;
    this.error.textContent = '';
    this.status.textContent = 'loading…';
    getJson<FlowsPage>(`/api/flows${qs ? `?${qs}` : ''}`, load.signal).then((page) => {
      if (this.load !== load) return;
      this.rows = [];
      this.body.textContent = '';
      this.prepend(page.flows.slice().reverse(), page.kept);
      this.openStream(qs);
    }, (err: unknown) => {
      if (this.load !== load || load.signal.aborted) return;
      this.rows = [];
      this.body.textContent = '';
      this.error.textContent = err instanceof Error ? err.message : String(err);
      this.status.textContent = '';
    });
  }

  private openStream(qs: string): void {
    const es = new EventSource(`/api/flows/stream${qs ? `?${qs}` : ''}`);
    this.stream = es;
    es.addEventListener('flows', (ev) => {
      // Oldest first, whatever order the batch came in: rows go on top in time order.
      const batch = (JSON.parse((ev as MessageEvent<string>).data) as FlowRow[]).sort((a, b) => a.time - b.time);
      if (this.paused) {
        this.pending.push(...batch);
        if (this.pending.length > MAX_ROWS) this.pending.splice(0, this.pending.length - MAX_ROWS);
        this.showStatus();
      } else this.prepend(batch);
    });
  }

  /** Adds rows (oldest first in `batch`) at the top; trims the table to MAX_ROWS. */
  private prepend(batch: FlowRow[], kept?: number): void {
    if (batch.length > 0) {
      const newest = batch.slice(-MAX_ROWS).reverse();
      const tmp = document.createElement('tbody');
      tmp.innerHTML = newest.map((f) => rowMarkup(f, HUBBLE_COLUMNS, 'flow-row')).join('');
      const frag = document.createDocumentFragment();
      for (const tr of [...tmp.children]) frag.appendChild(tr);
      this.body.insertBefore(frag, this.body.firstChild);
      this.rows = [...newest, ...this.rows];
      while (this.body.rows.length > MAX_ROWS) this.body.lastElementChild?.remove();
      if (this.rows.length > MAX_ROWS) this.rows.length = MAX_ROWS;
    }
    this.showStatus(kept);
  }

  private showStatus(kept?: number): void {
    const n = this.rows.length;
    let text = `${n} flow${n === 1 ? '' : 's'}${kept !== undefined ? ` (server keeps ${kept})` : ''}`;
    if (this.paused) text += ` · paused${this.pending.length ? `, ${this.pending.length} new held back` : ''}`;
    this.status.textContent = text;
    byId('flows-empty').hidden = n > 0 || this.error.textContent !== '';
  }

  private async showDetail(id: string): Promise<void> {
    this.selected = id;
    for (const tr of this.body.querySelectorAll('tr.selected')) tr.classList.remove('selected');
    this.body.querySelector(`tr[data-flow-id="${CSS.escape(id)}"]`)?.classList.add('selected');
    this.detail.hidden = false;
    this.detailBody.innerHTML = '<div class="empty">loading…</div>';
    try {
      const record = await getJson<unknown>(`/api/flows/${encodeURIComponent(id)}`);
      if (this.selected !== id) return;
      this.detailBody.innerHTML = `<pre data-testid="flow-detail-json">${esc(JSON.stringify(record, null, 2))}</pre>`;
    } catch (err) {
      if (this.selected !== id) return;
      this.detailBody.innerHTML = `<div class="error">${esc(err instanceof Error ? err.message : String(err))} (the server keeps only recent records)</div>`;
    }
  }

  private closeDetail(): void {
    this.selected = '';
    this.detail.hidden = true;
    for (const tr of this.body.querySelectorAll('tr.selected')) tr.classList.remove('selected');
  }
}
