// Create a function: from the inline editor (one Python or Node.js file),
// a .zip or a folder.

import { html, useState } from '../vendor/htm-preact.module.js';
import { lambda } from '../api.js';
import { ErrorBox, Field, useAsync } from '../ui.js';
import { CodeSource, inlineTemplates, languageOf, useSubmit, zipOf } from './code.js';

export function CreatePage({ info }) {
  const [desc] = useAsync(() => lambda('GET', '/_lamina/runtimes'), []);
  const runtimes = [...new Set((desc?.Runtimes || []).filter((r) => r.Architecture).map((r) => r.Runtime))].sort();
  const [form, setForm] = useState({ name: '', runtime: '', handler: '', memory: 128, timeout: 3 });
  const [code, setCode] = useState({});
  const [busy, error, run] = useSubmit();
  const runtime = form.runtime || runtimes.find((r) => r.startsWith('python')) || runtimes[0] || '';
  const lang = languageOf(runtime);
  const handler = form.handler || (lang ? inlineTemplates[lang].handler : 'bootstrap');
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const zip = await zipOf(runtime, code);
      await lambda('POST', '/2015-03-31/functions', {
        FunctionName: form.name, Runtime: runtime, Handler: handler, Role: `arn:aws:iam::${info.accountId}:role/lamina-console`,
        MemorySize: Number(form.memory), Timeout: Number(form.timeout), Code: { ZipFile: zip },
      });
      location.hash = '#/functions/' + encodeURIComponent(form.name) + '/test';
    });
  };
  return html`<h1>Create function</h1>
    <form class="stack" onSubmit=${submit}>
      <${Field} label="Function name" hint="Letters, digits, hyphens and underscores, up to 64.">
        <input required pattern="[A-Za-z0-9_-]{1,64}" value=${form.name} onInput=${set('name')} data-testid="fn-name" /><//>
      <${Field} label="Runtime"><select value=${runtime} onChange=${set('runtime')}>
        ${runtimes.map((r) => html`<option value=${r}>${r}</option>`)}</select><//>
      <${Field} label="Handler"><input value=${handler} onInput=${set('handler')} /><//>
      <div class="row">
        <${Field} label="Memory (MB)"><input type="number" min="128" max="10240" value=${form.memory} onInput=${set('memory')} /><//>
        <${Field} label="Timeout (s)"><input type="number" min="1" max="900" value=${form.timeout} onInput=${set('timeout')} /><//>
      </div>
      <${CodeSource} runtime=${runtime} value=${code} onChange=${setCode} />
      <${ErrorBox} error=${error} />
      <div class="actions"><button type="submit" disabled=${busy}>${busy ? 'Creating…' : 'Create function'}</button>
        <a href="#/functions">Cancel</a></div>
    </form>`;
}
