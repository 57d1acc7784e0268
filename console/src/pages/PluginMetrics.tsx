// Per-plugin invocation metrics (GET /api/plugins/metrics, issue 13).
// Until that endpoint is in openapi.yaml these render nothing.
export function PluginRates(_: { slug: string }) {
  return <span class="muted">—</span>;
}

export function PluginCharts(_: { slug: string }) {
  return null;
}
