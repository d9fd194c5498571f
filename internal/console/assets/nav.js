// The console's navigation: sections of pages. A service beside Lambda
// (S3 buckets, SNS topics, SQS queues, event source mappings…) adds its
// section here, with its pages in routes, when Lamina serves it.

/** sections are the navigation's groups, in order. */
export const sections = [
  {
    title: 'Lambda',
    items: [
      { href: '#/functions', label: 'Functions' },
      { href: '#/layers', label: 'Layers' },
      { href: '#/logs', label: 'Logs' },
    ],
  },
  {
    title: 'Node',
    items: [{ href: '#/metrics', label: 'Metrics' }],
  },
];
