// SNS topics: the list, and one topic with its attributes and
// subscriptions. The navigation shows these pages once Lamina serves SNS
// (add the section's item in nav.js and the routes in app.js).

import { html } from '../vendor/htm-preact.module.js';
import { children, first, query } from '../api.js';
import { ErrorBox, KeyValues, useAsync } from '../ui.js';

const sns = (action, params) => query('sns', '2010-03-31', action, params);

/** members are the texts of the elements named name in doc. */
const texts = (doc, name) => [...doc.getElementsByTagName(name)].map((e) => e.textContent);

async function listTopics() {
  const out = [];
  let token = '';
  for (let page = 0; page < 20; page++) {
    const doc = await sns('ListTopics', token ? { NextToken: token } : {});
    out.push(...texts(doc, 'TopicArn'));
    if (!(token = first(doc, 'NextToken'))) break;
  }
  return out;
}

const topicName = (arn) => arn.split(':').pop();

export function TopicsPage() {
  const [topics, error] = useAsync(listTopics, []);
  return html`<h1>Topics</h1>
    <${ErrorBox} error=${error} />
    <div class="table-wrap"><table class="list" data-testid="topics">
      <thead><tr><th scope="col">Name</th><th scope="col">ARN</th></tr></thead>
      <tbody>${(topics || []).map((arn) => html`<tr><td><a href=${'#/topics/' + encodeURIComponent(arn)}>${topicName(arn)}</a></td><td class="mono">${arn}</td></tr>`)}
        ${topics && topics.length === 0 && html`<tr><td colspan="2" class="muted">No topics yet.</td></tr>`}</tbody>
    </table></div>`;
}

export function TopicPage({ arn }) {
  const [t, error] = useAsync(async () => {
    const [attrs, subs] = await Promise.all([sns('GetTopicAttributes', { TopicArn: arn }), sns('ListSubscriptionsByTopic', { TopicArn: arn })]);
    return {
      attributes: [...attrs.getElementsByTagName('entry')].map((e) => [first(e, 'key'), first(e, 'value')]),
      subscriptions: [...subs.getElementsByTagName('Subscriptions')].flatMap((s) => children(s, 'member'))
        .map((m) => ({ arn: first(m, 'SubscriptionArn'), protocol: first(m, 'Protocol'), endpoint: first(m, 'Endpoint') })),
    };
  }, [arn]);
  return html`<p class="crumbs"><a href="#/topics">Topics</a> / ${topicName(arn)}</p>
    <h1>${topicName(arn)}</h1>
    <${ErrorBox} error=${error} />
    ${t && html`<section><h2>Attributes</h2><${KeyValues} items=${t.attributes.sort(([a], [b]) => a.localeCompare(b))} /></section>
      <section><h2>Subscriptions</h2><div class="table-wrap"><table class="list" data-testid="subscriptions">
        <thead><tr><th scope="col">Protocol</th><th scope="col">Endpoint</th><th scope="col">ARN</th></tr></thead>
        <tbody>${t.subscriptions.map((s) => html`<tr><td>${s.protocol}</td><td class="mono">${s.endpoint}</td><td class="mono">${s.arn}</td></tr>`)}
          ${t.subscriptions.length === 0 && html`<tr><td colspan="3" class="muted">No subscriptions.</td></tr>`}</tbody>
      </table></div></section>`}`;
}
