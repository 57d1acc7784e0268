import { useEffect, useState } from "preact/hooks";
import { api, ok, T, type Schemas } from "../api/client";
import { follow } from "../api/sse";
import { Action, Json, ProblemBox, Section, Time, useLoad } from "../ui";
import { can, current } from "../session";
import { BarChart } from "../charts";

type Ev = Schemas["EventView"];
/** One read of the log, newest first (`GET /api/events?order=desc`). */
const PAGE_EVENTS = 100;
/** Rows the page keeps (live ones and older pages together): beyond it the
 * oldest are let go, and "Older events" reads them again. */
const EVENTS_SHOWN_MAX = 2000;
/** Each verify call walks at most 20,000 events; this bounds one click. */
const VERIFY_CALLS_MAX = 500;

/** The loaded rows, newest first, and the cursor of the next older page
 * (`null`: the start of the log is shown). */
type Log = { events: Ev[]; older: number | null };

/** At most EVENTS_SHOWN_MAX rows; when older rows are let go, the cursor
 * moves to the oldest one kept, so they can be read again. */
function bounded(events: Ev[], older: number | null): Log {
  if (events.length <= EVENTS_SHOWN_MAX) return { events, older };
  const kept = events.slice(0, EVENTS_SHOWN_MAX);
  return { events: kept, older: kept[kept.length - 1].position };
}

/** The tenant's log (filterable, live, newest first, older pages on
 * demand), one event's envelope and hashes, an aggregate's state at a
 * chosen position (time travel), the chain check. */
export function Events() {
  const [type, setType] = useState("");
  const [stream, setStream] = useState("");
  const [log, setLog] = useState<Log>({ events: [], older: null });
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(false);
  const [selected, setSelected] = useState<Ev | null>(null);
  const filters = { type: type || undefined, stream: stream || undefined };
  useEffect(() => {
    let stop = () => {};
    let active = true;
    (async () => {
      try {
        // One bounded read of the newest events, then live from its top.
        const page = await ok(api.GET("/api/events", { params: { header: T, query: { order: "desc", limit: PAGE_EVENTS, ...filters } } }));
        if (!active) return;
        setLog({ events: page.events, older: page.next_before ?? null });
        setError(null);
        const q = new URLSearchParams({ after: String(page.next_after) });
        if (type) q.set("type", type);
        const h = follow<Ev>("/api/events/stream", `/api/events/stream?${q}`, (e) => {
          if (stream && e.stream !== stream) return;
          setLog((prev) => bounded([e, ...prev.events], prev.older));
        }, setLive);
        stop = () => h.stop();
      } catch (e) {
        setError(e);
      }
    })();
    return () => {
      active = false;
      stop();
    };
  }, [type, stream]);
  const older = async () => {
    if (log.older === null) return;
    const page = await ok(api.GET("/api/events", { params: { header: T, query: { order: "desc", before: log.older, limit: PAGE_EVENTS, ...filters } } }));
    setLog((prev) => (prev.older === log.older ? { events: [...prev.events, ...page.events], older: page.next_before ?? null } : prev));
  };
  return (
    <>
      <h1>Events &amp; audit</h1>
      <Verify />
      <Section title="Log" id="log">
        <p class="muted" data-testid="events-live">{live ? "● live" : "○ connecting"}</p>
        <form class="inline filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            Type or prefix <input value={type} placeholder="plugin." onChange={(e) => setType((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Stream <input value={stream} placeholder="installation-ins_…" onChange={(e) => setStream((e.target as HTMLInputElement).value)} />
          </label>
        </form>
        <ProblemBox error={error} />
        <Activity events={log.events} />
        <div class="split">
          <LogTable log={log} selected={selected} onSelect={setSelected} older={older} />
          {selected && <Envelope e={selected} />}
        </div>
      </Section>
      {can("admin") ? <TimeTravel /> : <p class="muted">Time travel needs the admin role.</p>}
    </>
  );
}

/** The loaded rows, newest first, and the way to older ones. */
function LogTable(props: { log: Log; selected: Ev | null; onSelect: (e: Ev) => void; older: () => Promise<void> }) {
  const { events, older } = props.log;
  return (
    <div>
      <table class="events">
        <caption class="sr-only">Events, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Position</th>
            <th scope="col">Type</th>
            <th scope="col">Stream</th>
            <th scope="col">Recorded</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.position} class={props.selected?.position === e.position ? "selected" : ""} data-testid={`event-${e.position}`}>
              <td>
                <button type="button" class="link" onClick={() => props.onSelect(e)}>{e.position}</button>
              </td>
              <td><code>{e.type}</code></td>
              <td><code>{e.stream}</code></td>
              <td><Time at={e.recorded_at} /></td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted" data-testid="events-shown">
        {events.length} event{events.length === 1 ? "" : "s"} shown, newest first
        {older === null ? " (back to the start of the log)" : ""}
      </p>
      {older !== null && <Action min="viewer" label="Older events" testid="events-older" run={props.older} />}
    </div>
  );
}

/** Events per minute over the loaded window. */
function Activity({ events }: { events: Ev[] }) {
  const buckets = new Map<string, number>();
  for (const e of [...events].reverse()) {
    const k = e.recorded_at.slice(11, 16);
    buckets.set(k, (buckets.get(k) ?? 0) + 1);
  }
  const values = [...buckets].slice(-40).map(([x, y]) => ({ x, y }));
  return values.length > 1 ? <BarChart label="Events per minute (UTC)" values={values} height={50} /> : null;
}

function Envelope({ e }: { e: Ev }) {
  return (
    <aside class="envelope" aria-label={`Event ${e.position}`} data-testid="envelope">
      <h3>Event {e.position}</h3>
      <dl class="facts">
        <dt>Id</dt><dd><code>{e.id}</code></dd>
        <dt>Type</dt><dd><code>{e.type}</code> v{e.schema_version}</dd>
        <dt>Stream</dt><dd><code>{e.stream}</code> @ {e.revision}</dd>
        <dt>Principal</dt><dd><code>{e.principal}</code></dd>
        <dt>Correlation</dt><dd><code>{e.correlation_id}</code></dd>
        <dt>Causation</dt><dd><code>{e.causation_id ?? "—"}</code></dd>
        <dt>Previous hash</dt><dd><code class="hash">{e.prev_hash}</code></dd>
        <dt>Hash</dt><dd><code class="hash">{e.hash}</code></dd>
      </dl>
      <Json value={e.data} />
    </aside>
  );
}

/** The chain check: each call verifies a bounded stretch of the log, so
 * it is called until the verified prefix reaches the head. */
function Verify() {
  const [report, setReport] = useState<Schemas["VerifyReportView"] | null>(null);
  return (
    <Section title="Chain check" id="verify">
      <Action min="viewer" label="Verify the hash chain" testid="verify" run={async () => {
        for (let i = 0; i < VERIFY_CALLS_MAX; i++) {
          const r = await ok(api.GET("/api/audit/verify", { params: { header: T } }));
          setReport(r);
          if (r.complete || r.first_break) break;
        }
      }} />
      {report && (
        <p data-testid="verify-result" class={report.first_break ? "error-text" : "ok-text"}>
          {report.first_break
            ? `Broken at position ${report.first_break.position}: ${report.first_break.reason}`
            : report.complete
              ? `Intact: ${report.tenant_events_verified} of this tenant's events verified, up to the head of the log.`
              : `Verifying… ${report.tenant_events_verified} events so far.`}
        </p>
      )}
    </Section>
  );
}

/** An aggregate's state as of a position chosen with a slider over its
 * stream's events. */
function TimeTravel() {
  const plugins = useLoad(() => ok(api.GET("/api/plugins", { params: { header: T } })), []);
  const [target, setTarget] = useState("");
  const [positions, setPositions] = useState<Ev[]>([]);
  const [index, setIndex] = useState(0);
  const [state, setState] = useState<Schemas["AggregateState"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  type Option = { label: string; kind: "installation" | "tenant"; id: string };
  const options: Option[] = (plugins.data?.plugins ?? []).map((p) => ({ label: `plugin ${p.slug}`, kind: "installation", id: p.id }));
  const tenant = current.value?.tenant;
  if (tenant) options.push({ label: `tenant ${current.value?.slug}`, kind: "tenant", id: tenant });
  const chosen = options.find((o) => o.id === target) ?? options[0];
  useEffect(() => {
    if (!chosen) return;
    let live = true;
    ok(api.GET("/api/events", { params: { header: T, query: { stream: `${chosen.kind}-${chosen.id}`, limit: 1000 } } })).then(
      (p) => {
        if (!live) return;
        setPositions(p.events);
        setIndex(Math.max(0, p.events.length - 1));
      },
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [chosen?.id]);
  const at = positions[index];
  useEffect(() => {
    if (!chosen || !at) return;
    // An answer for a position the slider has left is dropped.
    let live = true;
    ok(api.GET("/api/audit/state/{kind}/{id}", { params: { header: T, path: { kind: chosen.kind, id: chosen.id }, query: { at: String(at.position) } } })).then(
      (s) => live && (setState(s), setError(null)),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [chosen?.id, at?.position]);
  return (
    <Section title="Time travel" id="timetravel">
      {options.length === 0 && <p class="muted">No aggregate to show yet (install a plugin).</p>}
      {chosen && (
        <>
          <label>
            Aggregate{" "}
            <select value={chosen.id} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
              {options.map((o) => <option value={o.id}>{o.label}</option>)}
            </select>
          </label>
          {positions.length > 0 && (
            <div class="slider">
              <label>
                Position {at?.position} ({at?.type}, <Time at={at?.recorded_at} />)
                <input
                  type="range"
                  min={0}
                  max={positions.length - 1}
                  value={index}
                  data-testid="tt-slider"
                  onInput={(e) => setIndex(Number((e.target as HTMLInputElement).value))}
                />
              </label>
              <ol class="ticks" aria-hidden="true">
                {positions.map((p, i) => <li class={i === index ? "on" : ""}>{p.type.split(".").pop()}</li>)}
              </ol>
            </div>
          )}
          <ProblemBox error={error} />
          {state && (
            <div data-testid="tt-state">
              <p class="muted">
                <code>{state.stream}</code> at revision {state.revision}, position {state.position}
              </p>
              {summary(state.state) && <p data-testid="tt-summary">{summary(state.state)}</p>}
              <Json value={state.state} />
            </div>
          )}
        </>
      )}
    </Section>
  );
}

/** The headline of an aggregate's state: its status and version. */
function summary(state: unknown): string | null {
  if (!state || typeof state !== "object") return null;
  const s = state as { status?: unknown; current?: { version?: unknown } | null; slug?: unknown };
  const parts = [];
  if (typeof s.status === "string") parts.push(`Status: ${s.status}`);
  if (s.current && typeof s.current.version === "string") parts.push(`version ${s.current.version}`);
  return parts.length ? parts.join(", ") : null;
}
