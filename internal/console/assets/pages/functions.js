// The functions list: what the store holds, updated live from the server's
// change stream.

import { html, useEffect, useState } from '../vendor/htm-preact.module.js';
import { listAll, watchChanges } from '../api.js';
import { ErrorBox, formatBytes, useAsync } from '../ui.js';

export function FunctionsPage() {
  const [functions, error, reload] = useAsync(() => listAll('/2015-03-31/functions?MaxItems=50', 'Functions'), []);
  const [filter, setFilter] = useState('');
  const [updated, setUpdated] = useState(null);
  useEffect(() => {
    let timer = 0;
    // Changes come in bursts (a create writes several records): read the
    // list once per burst.
    return watchChanges(() => {
      clearTimeout(timer);
      timer = setTimeout(() => { reload(); setUpdated(new Date()); }, 250);
    });
  }, []);
  const shown = (functions || []).filter((f) => f.FunctionName.toLowerCase().includes(filter.toLowerCase()))
    .sort((a, b) => a.FunctionName.localeCompare(b.FunctionName));
  return html`<h1>Functions</h1>
    <div class="toolbar">
      <label class="inline">Filter <input type="search" value=${filter} onInput=${(e) => setFilter(e.target.value)} placeholder="name" /></label>
      <a class="button" href="#/create">Create function</a>
    </div>
    <${ErrorBox} error=${error} />
    <p class="muted" aria-live="polite">${functions ? `${functions.length} function${functions.length === 1 ? '' : 's'}` : 'Loading…'}${updated ? ` · updated live at ${updated.toLocaleTimeString()}` : ' · live'}</p>
    <div class="table-wrap"><table class="list" data-testid="functions">
      <thead><tr><th scope="col">Name</th><th scope="col">Runtime</th><th scope="col">Memory</th><th scope="col">Code size</th><th scope="col">Last modified</th></tr></thead>
      <tbody>
        ${shown.map((f) => html`<tr>
          <td><a href=${'#/functions/' + encodeURIComponent(f.FunctionName)}>${f.FunctionName}</a>${f.Description && html`<div class="muted">${f.Description}</div>`}</td>
          <td>${f.Runtime || f.PackageType}</td><td>${f.MemorySize} MB</td><td>${formatBytes(f.CodeSize)}</td>
          <td>${new Date(f.LastModified).toLocaleString()}</td>
        </tr>`)}
        ${functions && shown.length === 0 && html`<tr><td colspan="5" class="muted">No functions${filter ? ' match' : ' yet'}.</td></tr>`}
      </tbody>
    </table></div>`;
}
