import { api, ok, T, type Schemas } from "../api/client";
import { href } from "../router";
import { Badge, ProblemBox, Time, useLoad } from "../ui";

/** Every webhook with its health: status, backlog, consecutive failures. */
export function Webhooks() {
  const list = useLoad(() => ok(api.GET("/api/webhooks", { params: { header: T } })), []);
  return (
    <>
      <h1>Webhooks</h1>
      <p class="muted">Declared as code (<code>extensor webhooks apply DIR</code> or <code>PUT /api/webhooks/&#123;name&#125;</code>).</p>
      <ProblemBox error={list.error} />
      {list.data && (
        <table>
          <caption class="sr-only">Webhooks</caption>
          <thead>
            <tr>
              <th scope="col">Webhook</th>
              <th scope="col">Status</th>
              <th scope="col">Health</th>
              <th scope="col">Events</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {list.data.webhooks.map((w) => (
              <Row w={w} />
            ))}
            {list.data.webhooks.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">No webhooks declared.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </>
  );
}

function Row({ w }: { w: Schemas["WebhookSummary"] }) {
  const detail = useLoad(
    () => ok(api.GET("/api/webhooks/{name}", { params: { header: T, path: { name: w.name } } })),
    [w.name, w.revision],
  );
  return (
    <tr data-testid={`webhook-${w.name}`}>
      <td>
        <a href={href("webhooks", w.name)}>{w.name}</a>
        {w.description && <div class="muted">{w.description}</div>}
      </td>
      <td>
        <Badge value={w.status} />
        {w.disabled_reason && <div class="muted">{w.disabled_reason}</div>}
      </td>
      <td>{detail.data?.stats ? <Health s={detail.data.stats} /> : <span class="muted">—</span>}</td>
      <td>{w.on.map((o) => <code>{o} </code>)}</td>
      <td>
        <Time at={w.updated_at} />
      </td>
    </tr>
  );
}

export function Health({ s }: { s: Schemas["WebhookStatsView"] }) {
  const state = s.consecutive_failures > 0 ? "failing" : s.pending + s.scheduled > 0 ? "backlog" : "healthy";
  return (
    <span>
      <Badge value={state} /> <span class="muted">
        {s.pending} pending · {s.in_flight} in flight · {s.scheduled} retrying · {s.consecutive_failures} failures in a row
      </span>
    </span>
  );
}
