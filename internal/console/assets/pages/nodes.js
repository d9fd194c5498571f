// The cluster's nodes as this node sees them: memory, environments and
// health (the age of each node's last heartbeat).

import { html } from '../vendor/htm-preact.module.js';
import { lambda } from '../api.js';
import { ErrorBox, useAsync, useInterval } from '../ui.js';

/** staleAfter is when a heartbeat's age is shown as a warning. */
const staleAfter = 15;

export function NodesPage({ info }) {
  const [res, error, reload] = useAsync(() => lambda('GET', '/_lamina/nodes'), []);
  useInterval(reload, 5000);
  const nodes = (res?.Nodes || []).slice().sort((a, b) => a.ID.localeCompare(b.ID));
  const age = (n) => Math.max(0, Math.round((Date.now() - new Date(n.Heartbeat).getTime()) / 1000));
  return html`<h1>Cluster</h1>
    <${ErrorBox} error=${error} />
    ${res && html`<p class="muted" aria-live="polite">${nodes.length} live node${nodes.length === 1 ? '' : 's'} as node ${res.Self} sees them · the store keeps ${res.Replicas} replica${res.Replicas === 1 ? '' : 's'} · read every 5 s.
      This console's charts are of node ${info.node}: <a href="#/metrics">its metrics</a>.</p>`}
    <div class="table-wrap"><table class="list" data-testid="nodes">
      <thead><tr><th scope="col">Node</th><th scope="col">Memory in use</th><th scope="col">Busy</th><th scope="col">Evictable</th><th scope="col">Environments</th>
        <th scope="col">Health</th><th scope="col">Started</th><th scope="col">API</th></tr></thead>
      <tbody>${nodes.map((n) => html`<tr>
        <td>${n.ID}${n.ID === res.Self ? html` <span class="muted">(this node)</span>` : ''}</td>
        <td><meter min="0" max=${n.MemoryBudgetMB} value=${n.MemoryInUseMB} aria-label=${`${n.ID} memory in use`}></meter> ${n.MemoryInUseMB} of ${n.MemoryBudgetMB} MB</td>
        <td>${n.MemoryBusyMB} MB</td><td>${n.MemoryEvictableMB} MB</td><td>${n.Environments}</td>
        <td class=${age(n) > staleAfter ? 'warn' : ''}>${age(n) > staleAfter ? 'heartbeat late: ' : 'heartbeat '}${age(n)} s ago</td>
        <td>${new Date(n.Started).toLocaleString()}</td><td class="mono">${n.APIEndpoint}</td></tr>`)}</tbody>
    </table></div>`;
}
