import { useEffect, useRef, useState } from "preact/hooks";
import { api, ok, T, type Schemas } from "../api/client";
import { go, href } from "../router";
import { Action, Badge, ProblemBox, Section, Time, useLoad } from "../ui";
import { BarChart } from "../charts";
import { Health } from "./Webhooks";

type Status = Schemas["DeliveryStatusName"];
type Attempt = Schemas["AttemptView"];

/** An attempt succeeded when the receiver answered 2xx. */
const answered2xx = (a?: Attempt) => !!a && a.outcome === "status" && !!a.status && a.status >= 200 && a.status < 300;

/** One webhook: YAML and code, health, deliveries (filtered), a
 * delivery's attempt timeline, redeliver, replay, test, enable/disable. */
export function Webhook({ name, delivery }: { name: string; delivery?: string }) {
  const path = { header: T, path: { name } };
  const w = useLoad(() => ok(api.GET("/api/webhooks/{name}", { params: path })), [name]);
  const [status, setStatus] = useState<Status | "">("");
  const [type, setType] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const deliveries = useLoad(
    () =>
      ok(
        api.GET("/api/webhooks/{name}/deliveries", {
          params: {
            ...path,
            query: {
              status: status || undefined,
              event_type: type || undefined,
              since: since ? new Date(since).toISOString() : undefined,
              until: until ? new Date(until).toISOString() : undefined,
              limit: 100,
            },
          },
        }),
      ),
    [name, status, type, since, until],
  );
  // Pending deliveries change by themselves: look again while any is pending.
  useEffect(() => {
    const pending = deliveries.data?.deliveries.some((d) => d.status === "pending");
    if (!pending) return;
    const t = setTimeout(() => (deliveries.reload(), w.reload()), 1500);
    return () => clearTimeout(t);
  }, [deliveries.data]);
  if (w.error) return <ProblemBox error={w.error} />;
  if (!w.data) return <p>Loading…</p>;
  const hook = w.data;
  const list = deliveries.data?.deliveries ?? [];
  return (
    <>
      <p>
        <a href={href("webhooks")}>Webhooks</a> /
      </p>
      <h1>
        {hook.name} <Badge value={hook.status} /> <span class="muted">revision {hook.revision}</span>
      </h1>
      {hook.stats && <Health s={hook.stats} />}
      <div class="actions">
        {hook.status === "active" ? (
          <Action min="developer" label="Disable" testid="webhook-disable" run={async () => {
            await ok(api.POST("/api/webhooks/{name}/disable", { params: path }));
            w.reload();
          }} />
        ) : (
          <Action min="developer" label="Enable" testid="webhook-enable" run={async () => {
            await ok(api.POST("/api/webhooks/{name}/enable", { params: path }));
            w.reload();
          }} />
        )}
        <Action min="developer" label="Send test delivery" testid="webhook-test" run={async () => {
          await ok(api.POST("/api/webhooks/{name}/test", { params: path }));
          deliveries.reload();
        }} />
      </div>
      <Replay name={name} onDone={() => deliveries.reload()} />
      <Section title="Deliveries" id="deliveries">
        {list.length > 1 && <BarChart
          label="Latency of the last attempt of each delivery, oldest first (red: failed)"
          unit=" ms"
          values={[...list].reverse().map((d) => ({
            x: d.delivery_id.slice(-6),
            y: d.attempts.at(-1)?.latency_ms ?? 0,
            bad: d.status === "failed" || !answered2xx(d.attempts.at(-1)),
          }))}
        />}
        <form class="inline filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            Status
            <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as Status)} data-testid="filter-status">
              <option value="">any</option>
              <option value="pending">pending</option>
              <option value="delivered">delivered</option>
              <option value="failed">failed</option>
              <option value="skipped">skipped</option>
            </select>
          </label>
          <label>
            Event type <input value={type} onChange={(e) => setType((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Since <input type="datetime-local" value={since} onChange={(e) => setSince((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Until <input type="datetime-local" value={until} onChange={(e) => setUntil((e.target as HTMLInputElement).value)} />
          </label>
        </form>
        <ProblemBox error={deliveries.error} />
        <table>
          <caption class="sr-only">Deliveries, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Delivery</th>
              <th scope="col">Status</th>
              <th scope="col">Event</th>
              <th scope="col">Attempts</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {list.map((d) => (
              <tr key={d.delivery_id} data-testid={`delivery-${d.delivery_id}`} class={d.delivery_id === delivery ? "selected" : ""}>
                <td>
                  <a href={href("webhooks", name, d.delivery_id)}>{d.delivery_id}</a>
                  {d.redelivery_of && <div class="muted">redelivery of {d.redelivery_of}</div>}
                </td>
                <td>
                  <Badge value={d.status} />
                </td>
                <td>
                  <code>{d.event_type}</code> <span class="muted">{d.origin}</span>
                </td>
                <td>{d.attempts.length}</td>
                <td>
                  <Time at={d.created_at} />
                </td>
              </tr>
            ))}
            {list.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">No deliveries match.</td>
              </tr>
            )}
          </tbody>
        </table>
      </Section>
      {delivery && (
        <Delivery
          name={name}
          id={delivery}
          onRedelivered={() => {
            deliveries.reload();
            w.reload();
          }}
        />
      )}
      <Section title="Declaration" id="yaml">
        <pre class="code" tabIndex={0} aria-label="webhook.yaml">{hook.yaml}</pre>
        {Object.entries(hook.sources).map(([file, code]) => (
          <>
            <h3>{file}</h3>
            <pre class="code" tabIndex={0} aria-label={file}>{code}</pre>
          </>
        ))}
      </Section>
    </>
  );
}

function Delivery({ name, id, onRedelivered }: { name: string; id: string; onRedelivered: () => void }) {
  const path = { header: T, path: { name, delivery_id: id } };
  const d = useLoad(() => ok(api.GET("/api/webhooks/{name}/deliveries/{delivery_id}", { params: path })), [name, id]);
  const was = useRef<string | undefined>(undefined);
  useEffect(() => {
    const status = d.data?.status;
    // A pending delivery is followed until it settles; then the list and
    // the health are read again (a filtered list may not show it pending).
    if (was.current === "pending" && status && status !== "pending") onRedelivered();
    was.current = status;
    if (status !== "pending") return;
    const t = setTimeout(d.reload, 1000);
    return () => clearTimeout(t);
  }, [d.data]);
  if (d.error) return <ProblemBox error={d.error} />;
  if (!d.data) return null;
  const v = d.data;
  return (
    <Section title={`Delivery ${v.delivery_id}`} id="delivery">
      <p>
        <Badge value={v.status} /> event <code>{v.event_id}</code> ({v.event_type}){v.reason ? ` — ${v.reason}` : ""}
      </p>
      <ol class="timeline" data-testid="attempts">
        <li>
          <Time at={v.created_at} /> created ({v.origin})
        </li>
        {v.attempts.map((a) => (
          <li class={answered2xx(a) ? "ok" : "bad"}>
            <Time at={a.at} /> attempt {a.attempt}:{" "}
            {a.outcome === "status" ? <Badge value={`HTTP ${a.status}`} /> : <Badge value={a.outcome} />} in {a.latency_ms} ms
            {a.error && <div class="error-text">{a.error}</div>}
            {a.response_excerpt && <pre class="excerpt" tabIndex={0}>{a.response_excerpt}</pre>}
            {a.next_attempt_at && (
              <div class="muted">
                next attempt <Time at={a.next_attempt_at} />
              </div>
            )}
          </li>
        ))}
        {v.finished_at && (
          <li>
            <Time at={v.finished_at} /> finished: {v.status}
          </li>
        )}
      </ol>
      {v.status !== "pending" && (
        <Action min="developer" label="Redeliver" testid="redeliver" run={async () => {
          const created = await ok(api.POST("/api/webhooks/{name}/deliveries/{delivery_id}/redeliver", { params: path }));
          onRedelivered();
          go("webhooks", name, created.delivery_id);
        }} />
      )}
    </Section>
  );
}

/** The deliveries API's largest page. */
const DELIVERIES_PAGE_MAX = 200;
/** Pages of pending deliveries one progress check reads (2,000 deliveries):
 * a larger backlog shows as "at most" that many finished. */
const REPLAY_PENDING_PAGES_MAX = 10;
/** How often replay progress is checked. */
const REPLAY_POLL_MS = 1000;

type ReplayProgress = { total: number; done: number; bounded: boolean; since: string };

/** How many of a replay's deliveries are still pending: the pending
 * deliveries created since the replay began (the server's clock), of
 * origin `replay`, paged newest first with `next_until`. */
async function pendingReplays(name: string, since: string): Promise<{ pending: number; bounded: boolean }> {
  let pending = 0;
  let until: string | undefined;
  for (let i = 0; i < REPLAY_PENDING_PAGES_MAX; i++) {
    const page = await ok(
      api.GET("/api/webhooks/{name}/deliveries", {
        params: { header: T, path: { name }, query: { status: "pending", since, until, limit: DELIVERIES_PAGE_MAX } },
      }),
    );
    pending += page.deliveries.filter((d) => d.origin === "replay").length;
    if (!page.next_until) return { pending, bounded: false };
    until = page.next_until;
  }
  return { pending, bounded: true };
}

/** Replays a time range and follows the new deliveries until none is pending. */
function Replay({ name, onDone }: { name: string; onDone: () => void }) {
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [progress, setProgress] = useState<ReplayProgress | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!progress || progress.done >= progress.total) return;
    const t = setTimeout(async () => {
      try {
        const { pending, bounded } = await pendingReplays(name, progress.since);
        setProgress({ ...progress, done: Math.max(0, progress.total - pending), bounded });
        onDone();
      } catch (e) {
        setError(e);
      }
    }, REPLAY_POLL_MS);
    return () => clearTimeout(t);
  }, [progress]);
  return (
    <Section title="Replay a time range" id="replay">
      <form class="inline" onSubmit={(e) => e.preventDefault()}>
        <label>
          From <input type="datetime-local" step="1" value={from} onChange={(e) => setFrom((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          To <input type="datetime-local" step="1" value={to} onChange={(e) => setTo((e.target as HTMLInputElement).value)} />
        </label>
        <Action min="developer" label="Replay" testid="replay" run={async () => {
          setError(null);
          const call = api.POST("/api/webhooks/{name}/replay", {
            params: { header: T, path: { name } },
            body: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
          });
          const r = await ok(call);
          const { response } = await call;
          // Deliveries are stamped by the server's clock: count from its
          // `Date` (whole seconds, so a second earlier), not this browser's.
          const at = Date.parse(response.headers.get("date") ?? "") || Date.now();
          setProgress({ total: r.deliveries, done: 0, bounded: false, since: new Date(at - 1000).toISOString() });
        }} />
      </form>
      <ProblemBox error={error} />
      {progress && (
        <p data-testid="replay-progress">
          <progress max={Math.max(progress.total, 1)} value={progress.done} aria-label="Replay progress" />{" "}
          {progress.bounded ? "at most " : ""}
          {progress.done} of {progress.total} replayed deliveries finished
        </p>
      )}
    </Section>
  );
}
