// Shared pieces of the console's pages. Everything a function, a log line
// or a name contains is rendered as text (Preact text nodes); nothing is
// ever inserted as HTML.

import { html, useEffect, useRef, useState } from './vendor/htm-preact.module.js';
import uPlot from './vendor/uPlot.esm.js';

export { html };

/** ErrorBox shows a failed call. */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert"><strong>${error.code || 'Error'}</strong> ${error.message}</div>`;
}

/** Field is a labelled form control. */
export function Field({ label, hint, children }) {
  return html`<label class="field"><span class="label">${label}</span>${children}${hint && html`<span class="hint">${hint}</span>`}</label>`;
}

/**
 * Confirm asks before an action that cannot be undone; its action button
 * takes the focus when it appears, Escape cancels.
 */
export function Confirm({ label, action, busy, onConfirm, onCancel, children }) {
  const button = useRef(null);
  useEffect(() => { button.current?.focus(); }, []);
  return html`<div role="alertdialog" aria-label=${label} class="confirm" onKeyDown=${(e) => e.key === 'Escape' && onCancel()}>
    <p>${children}</p>
    <button ref=${button} onClick=${onConfirm} disabled=${busy}>${action}</button>
    <button class="secondary" onClick=${onCancel}>Cancel</button></div>`;
}

/** KeyValues shows pairs as a description list. */
export function KeyValues({ items }) {
  return html`<dl class="kv">${items.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

/** useAsync runs load when deps change and returns [value, error, reload]. */
export function useAsync(load, deps) {
  const [state, setState] = useState({ value: undefined, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then((value) => live && setState({ value, error: null }), (error) => live && setState((s) => ({ value: s.value, error })));
    return () => { live = false; };
  }, [...deps, tick]);
  return [state.value, state.error, () => setTick((t) => t + 1)];
}

/** useInterval calls f every ms while the component lives (and enabled). */
export function useInterval(f, ms, enabled = true) {
  const saved = useRef(f);
  saved.current = f;
  useEffect(() => {
    if (!enabled) return undefined;
    const id = setInterval(() => saved.current(), ms);
    return () => clearInterval(id);
  }, [ms, enabled]);
}

/** formatBytes shows a size. */
export function formatBytes(n) {
  if (n == null) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

const palette = ['#2563eb', '#dc2626', '#d97706', '#059669', '#7c3aed', '#0891b2'];

/**
 * Chart draws series over time with uPlot. data is the console's metrics
 * answer; lines are [{key, label}] of its columns. The latest figures are
 * also given as text, for screen readers and narrow screens.
 */
export function Chart({ title, data, lines, unit = '', gaps = false }) {
  const box = useRef(null);
  const plot = useRef(null);
  const columns = () => [data?.time || [], ...lines.map((l) => data?.[l.key] || [])];
  useEffect(() => {
    const el = box.current;
    const opts = {
      width: Math.max(el.clientWidth, 200), height: 160,
      legend: { show: true, live: false },
      cursor: { show: true, drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1)] } },
      axes: [{}, { size: 50, values: (u, vals) => vals.map((v) => v + unit) }],
      series: [{}, ...lines.map((l, i) => ({ label: l.label, stroke: palette[i % palette.length], width: 2, spanGaps: false, points: { show: gaps, size: 5 } }))],
    };
    plot.current = new uPlot(opts, columns(), el);
    const ro = new ResizeObserver(() => plot.current.setSize({ width: Math.max(el.clientWidth, 200), height: 160 }));
    ro.observe(el);
    return () => { ro.disconnect(); plot.current.destroy(); plot.current = null; };
  }, [lines.map((l) => l.key).join()]);
  useEffect(() => { plot.current?.setData(columns()); }, [data]);
  const last = lines.map((l) => {
    const col = data?.[l.key] || [];
    const v = col.length ? col[col.length - 1] : null;
    return `${l.label}: ${v == null ? '–' : Math.round(v * 100) / 100 + unit}`;
  }).join(', ');
  return html`<figure class="chart" data-chart=${title}>
    <figcaption><strong>${title}</strong> <span class="latest">${last}</span></figcaption>
    <div ref=${box} class="plot" role="img" aria-label=${`${title}, latest ${last}`}></div>
  </figure>`;
}

/** Charts is the set of charts of one series (a function's or the node's). */
export function Charts({ data }) {
  return html`<div class="charts">
    <${Chart} title="Invocations" data=${data} lines=${[{ key: 'invocations', label: 'invocations' }, { key: 'errors', label: 'errors' }, { key: 'throttles', label: 'throttles' }]} />
    <${Chart} title="Duration" unit=" ms" gaps data=${data} lines=${[{ key: 'durationP50', label: 'p50' }, { key: 'durationP99', label: 'p99' }]} />
    <${Chart} title="Cold starts" data=${data} lines=${[{ key: 'coldStarts', label: 'cold starts' }]} />
    <${Chart} title="Init Duration" unit=" ms" gaps data=${data} lines=${[{ key: 'initP50', label: 'p50' }, { key: 'initMax', label: 'max' }]} />
    <${Chart} title="Concurrent executions" data=${data} lines=${[{ key: 'concurrent', label: 'concurrent' }]} />
    <${Chart} title="Environments" data=${data} lines=${[{ key: 'busy', label: 'busy' }, { key: 'warm', label: 'warm' }, { key: 'frozen', label: 'frozen' }]} />
    <${Chart} title="Async queue depth" data=${data} lines=${[{ key: 'asyncDepth', label: 'events' }]} />
    <${Chart} title="Async oldest event age" unit=" s" data=${data} lines=${[{ key: 'asyncAge', label: 'age' }]} />
  </div>`;
}
