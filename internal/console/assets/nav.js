// The console's navigation: sections of pages. A service beside Lambda adds
// its item here, with its pages in app.js's routes.

/** sections are the navigation's groups, in order. */
export const sections = [
  {
    title: 'Lambda',
    items: [
      { href: '#/functions', label: 'Functions' },
      { href: '#/layers', label: 'Layers' },
      { href: '#/logs', label: 'Logs' },
      { href: '#/mappings', label: 'Event source mappings' },
    ],
  },
  {
    title: 'Services',
    items: [
      { href: '#/queues', label: 'Queues' },
      { href: '#/topics', label: 'Topics' },
      { href: '#/buckets', label: 'Buckets' },
      { href: '#/streams', label: 'Streams' },
    ],
  },
  {
    title: 'Cluster',
    items: [
      { href: '#/nodes', label: 'Nodes' },
      { href: '#/metrics', label: 'Metrics' },
    ],
  },
];
