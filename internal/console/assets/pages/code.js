// Code sources shared by creating a function and replacing its code: an
// inline single-file handler, a .zip, or a folder, each made into the
// base64 zip the API takes.

import { html, useState } from '../vendor/htm-preact.module.js';
import { makeZip, base64 } from '../zip.js';
import { Field } from '../ui.js';

/** inlineTemplates are the starting handlers by language. */
export const inlineTemplates = {
  python: {
    file: 'lambda_function.py', handler: 'lambda_function.lambda_handler',
    code: `import json


def lambda_handler(event, context):
    print("event:", json.dumps(event))
    return {"statusCode": 200, "body": json.dumps("Hello from Lamina!")}
`,
  },
  node: {
    file: 'index.mjs', handler: 'index.handler',
    code: `export const handler = async (event, context) => {
  console.log('event:', JSON.stringify(event));
  return { statusCode: 200, body: JSON.stringify('Hello from Lamina!') };
};
`,
  },
};

/** languageOf tells the inline template of a runtime, or null. */
export const languageOf = (runtime) => (runtime?.startsWith('python') ? 'python' : runtime?.startsWith('nodejs') ? 'node' : null);

/**
 * CodeSource lets the user give code; onChange gets a function that returns
 * the base64 zip (or throws), and the handler the inline file implies.
 */
export function CodeSource({ runtime, value, onChange }) {
  const lang = languageOf(runtime);
  const mode = value.mode || (lang ? 'inline' : 'zip');
  const set = (patch) => onChange({ ...value, mode, ...patch });
  const tpl = lang && inlineTemplates[lang];
  return html`<fieldset class="code-source">
    <legend>Code</legend>
    <div class="radios" role="radiogroup" aria-label="Code source">
      ${lang && html`<label><input type="radio" name="source" checked=${mode === 'inline'} onChange=${() => set({ mode: 'inline' })} /> Inline editor (${tpl.file})</label>`}
      <label><input type="radio" name="source" checked=${mode === 'zip'} onChange=${() => set({ mode: 'zip' })} /> Upload a .zip</label>
      <label><input type="radio" name="source" checked=${mode === 'folder'} onChange=${() => set({ mode: 'folder' })} /> Upload a folder</label>
    </div>
    ${mode === 'inline' && tpl && html`<${Field} label=${tpl.file} hint="Tab moves to the next field; the editor keeps your indentation as typed.">
      <textarea class="editor" spellcheck="false" rows="14" data-testid="inline-editor"
        value=${value.code ?? tpl.code} onInput=${(e) => set({ code: e.target.value })}></textarea><//>`}
    ${mode === 'zip' && html`<${Field} label="Deployment package (.zip, up to 50 MB)">
      <input type="file" accept=".zip,application/zip" onChange=${(e) => set({ file: e.target.files[0] })} /><//>`}
    ${mode === 'folder' && html`<${Field} label="Folder (its files become the package's root)">
      <input type="file" webkitdirectory multiple onChange=${(e) => set({ files: [...e.target.files] })} /><//>`}
  </fieldset>`;
}

/** zipOf returns the base64 zip of what CodeSource holds for runtime. */
export async function zipOf(runtime, value) {
  const lang = languageOf(runtime);
  const mode = value.mode || (lang ? 'inline' : 'zip');
  if (mode === 'inline') {
    const tpl = inlineTemplates[lang];
    if (!tpl) throw new Error('The inline editor is for Python and Node.js runtimes.');
    return base64(makeZip([{ name: tpl.file, data: value.code ?? tpl.code }]));
  }
  if (mode === 'zip') {
    if (!value.file) throw new Error('Choose a .zip file.');
    return base64(new Uint8Array(await value.file.arrayBuffer()));
  }
  if (!value.files?.length) throw new Error('Choose a folder.');
  const files = await Promise.all(value.files.map(async (f) => ({
    name: f.webkitRelativePath.split('/').slice(1).join('/') || f.name,
    data: new Uint8Array(await f.arrayBuffer()),
  })));
  return base64(makeZip(files));
}

/** useSubmit tracks a form's call: [busy, error, run]. */
export function useSubmit() {
  const [state, setState] = useState({ busy: false, error: null });
  const run = async (f) => {
    setState({ busy: true, error: null });
    try {
      await f();
      setState({ busy: false, error: null });
    } catch (error) {
      setState({ busy: false, error });
    }
  };
  return [state.busy, state.error, run];
}
