// Small shared pieces: problem display, role-gated buttons, time, badges.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiFailure, type Problem } from "./api/client";
import { can, type Role } from "./session";

export function ProblemBox({ error }: { error: unknown }) {
  if (!error) return null;
  const p: Problem | null = error instanceof ApiFailure ? error.problem : null;
  return (
    <div class="problem" role="alert">
      <strong>{p ? `${p.title} (${p.code})` : "Error"}</strong>
      <p>{p ? p.detail : String(error)}</p>
      {p && (p.errors ?? []).length > 0 && (
        <ul class="problems">
          {(p.errors ?? []).map((e) => (
            <li>
              <code>{e.path}</code> {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** A button shown only when the caller's role allows the action; it shows
 * the failure of its action under itself. */
export function Action(props: {
  min: Role;
  label: string;
  run: () => Promise<unknown>;
  danger?: boolean;
  confirm?: string;
  testid?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  if (!can(props.min)) return null;
  return (
    <span class="action">
      <button
        type="button"
        class={props.danger ? "danger" : ""}
        disabled={busy}
        data-testid={props.testid}
        onClick={async () => {
          if (props.confirm && !window.confirm(props.confirm)) return;
          setBusy(true);
          setErr(null);
          try {
            await props.run();
          } catch (e) {
            setErr(e);
          } finally {
            setBusy(false);
          }
        }}
      >
        {busy ? `${props.label}…` : props.label}
      </button>
      {err ? <ProblemBox error={err} /> : null}
    </span>
  );
}

export function Badge({ value }: { value: string }) {
  const http = /^HTTP (\d)/.exec(value);
  const tone = http ? (http[1] === "2" ? "ok" : "error") : value.replace(/[^a-z_]/g, "");
  return <span class={`badge badge-${tone}`}>{value}</span>;
}

export function Time({ at, zone }: { at?: string | null; zone?: string }) {
  if (!at) return <span class="muted">—</span>;
  const d = new Date(at);
  const text = zone
    ? d.toLocaleString("en-GB", { timeZone: zone, timeZoneName: "short" })
    : d.toLocaleString("en-GB");
  return <time dateTime={at}>{text}</time>;
}

export function Section(props: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section aria-labelledby={props.id}>
      <h2 id={props.id}>{props.title}</h2>
      {props.children}
    </section>
  );
}

export function Json({ value }: { value: unknown }) {
  return (
    <pre class="json" tabIndex={0}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

/** Loads `load()` when `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => live && (setData(d), setError(null)),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1), setData };
}
