// The layers list.

import { html } from '../vendor/htm-preact.module.js';
import { lambda } from '../api.js';
import { ErrorBox, useAsync } from '../ui.js';

export function LayersPage() {
  const [res, error] = useAsync(() => lambda('GET', '/2018-10-31/layers?MaxItems=50'), []);
  const layers = res?.Layers || [];
  return html`<h1>Layers</h1>
    <${ErrorBox} error=${error} />
    <div class="table-wrap"><table class="list">
      <thead><tr><th scope="col">Name</th><th scope="col">Latest version</th><th scope="col">Runtimes</th><th scope="col">Description</th><th scope="col">ARN</th></tr></thead>
      <tbody>
        ${layers.map((l) => html`<tr><td>${l.LayerName}</td><td>${l.LatestMatchingVersion?.Version}</td>
          <td>${(l.LatestMatchingVersion?.CompatibleRuntimes || []).join(', ')}</td><td>${l.LatestMatchingVersion?.Description}</td>
          <td class="mono">${l.LatestMatchingVersion?.LayerVersionArn}</td></tr>`)}
        ${res && layers.length === 0 && html`<tr><td colspan="5" class="muted">No layers yet.</td></tr>`}
      </tbody>
    </table></div>`;
}
