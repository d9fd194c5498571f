// The node's charts, from the samples the server keeps (no Prometheus
// needed).

import { html } from '../vendor/htm-preact.module.js';
import { call } from '../api.js';
import { Charts, ErrorBox, useAsync, useInterval } from '../ui.js';

export function MetricsPage({ info }) {
  const [data, error, reload] = useAsync(() => call('GET', '/metrics'), []);
  useInterval(reload, Math.max(1000, (info.sampleSeconds || 5) * 1000));
  return html`<h1>Metrics of node ${info.node}</h1>
    <p class="muted">One sample every ${info.sampleSeconds} s, the last hour, all functions of this node together. Prometheus gets the same figures at <code>/metrics</code>.</p>
    <${ErrorBox} error=${error} />
    <${Charts} data=${data} />`;
}
