import { useEffect, useState } from "preact/hooks";
import { api, ok, T, type Schemas } from "../api/client";
import { follow } from "../api/sse";
import { go, href } from "../router";
import { Action, Badge, Json, ProblemBox, Section, Time, useLoad } from "../ui";
import { can } from "../session";
import { PluginCharts } from "./PluginMetrics";

type Manifest = {
  routes?: { method: string; path: string; min_role?: string; public?: boolean }[] | Record<string, unknown>;
  events?: string[];
  jobs?: { name: string; schedule: string; timezone?: string }[];
  llm_filters?: string[];
  generator_hooks?: string[];
  allowed_hosts?: string[];
};

/** One plugin: manifest, permissions, routes, hooks, jobs, lifecycle,
 * secrets (keys only), live logs and charts. */
export function Plugin({ id }: { id: string }) {
  const p = useLoad(() => ok(api.GET("/api/plugins/{id}", { params: { header: T, path: { id } } })), [id]);
  if (p.error) return <ProblemBox error={p.error} />;
  if (!p.data) return <p>Loading…</p>;
  const plugin = p.data;
  const m = (plugin.manifest ?? {}) as Manifest;
  const routes = Array.isArray(m.routes) ? m.routes : [];
  const path = { header: T, path: { id } };
  return (
    <>
      <p>
        <a href={href("plugins")}>Plugins</a> /
      </p>
      <h1>
        {plugin.name} <code>{plugin.slug}</code> <Badge value={plugin.status} />
      </h1>
      <p>{plugin.description}</p>
      <dl class="facts">
        <dt>Version</dt>
        <dd>
          {plugin.current.version} <code class="digest">{plugin.current.bundle_digest.slice(0, 19)}…</code>
        </dd>
        <dt>Previous</dt>
        <dd>{plugin.previous ? plugin.previous.version : <span class="muted">none</span>}</dd>
        <dt>Installed</dt>
        <dd>
          <Time at={plugin.installed_at} />
        </dd>
      </dl>
      <div class="actions">
        {plugin.status !== "enabled" && (
          <Action min="developer" label="Enable" testid="enable" run={async () => {
            p.setData(await ok(api.POST("/api/plugins/{id}/enable", { params: path })));
          }} />
        )}
        {plugin.status === "enabled" && (
          <Action min="developer" label="Disable" testid="disable" run={async () => {
            p.setData(await ok(api.POST("/api/plugins/{id}/disable", { params: path })));
          }} />
        )}
        {plugin.previous && (
          <Action min="developer" label={`Roll back to ${plugin.previous.version}`} testid="roll-back" run={async () => {
            p.setData(await ok(api.POST("/api/plugins/{id}/roll-back", { params: path })));
          }} />
        )}
        <Action min="admin" label="Uninstall" danger testid="uninstall" confirm={`Uninstall ${plugin.slug}? Its files are removed.`} run={async () => {
          await ok(api.DELETE("/api/plugins/{id}", { params: path }));
          go("plugins");
        }} />
      </div>
      <PluginCharts slug={plugin.slug} />
      <div class="cols">
        <Section title="Permissions" id="perms">
          {plugin.permissions.length ? (
            <ul>{plugin.permissions.map((x) => <li><code>{x}</code></li>)}</ul>
          ) : (
            <p class="muted">None.</p>
          )}
          {m.allowed_hosts && m.allowed_hosts.length > 0 && (
            <p>Hosts: {m.allowed_hosts.map((h) => <code>{h} </code>)}</p>
          )}
        </Section>
        <Section title="Hooks" id="hooks">
          {m.events?.length ? <ul>{m.events.map((e) => <li><code>{e}</code></li>)}</ul> : <p class="muted">None.</p>}
          {m.llm_filters?.length ? <p>Filters: {m.llm_filters.join(", ")}</p> : null}
          {m.generator_hooks?.length ? <p>Generator hooks: {m.generator_hooks.join(", ")}</p> : null}
        </Section>
        <Section title="Routes" id="routes">
          {routes.length ? (
            <ul>
              {routes.map((r) => (
                <li>
                  <code>{r.method} /ext/{plugin.slug}{r.path}</code>
                  {r.public ? " (public)" : r.min_role ? ` (${r.min_role}+)` : ""}
                </li>
              ))}
            </ul>
          ) : (
            <p class="muted">None.</p>
          )}
        </Section>
        <Section title="Jobs" id="jobs">
          {m.jobs?.length ? (
            <ul>
              {m.jobs.map((j) => (
                <li>
                  <a href={href("jobs", id)}>{j.name}</a> <code>{j.schedule}</code> {j.timezone ?? "UTC"}
                </li>
              ))}
            </ul>
          ) : (
            <p class="muted">None.</p>
          )}
        </Section>
      </div>
      <Secrets id={id} />
      <Logs id={id} />
      <Section title="Manifest" id="manifest">
        <Json value={plugin.manifest} />
      </Section>
    </>
  );
}

function Secrets({ id }: { id: string }) {
  const path = { header: T, path: { id } };
  const list = useLoad(() => ok(api.GET("/api/plugins/{id}/secrets", { params: path })), [id]);
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState<unknown>(null);
  async function set(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      await ok(api.POST("/api/plugins/{id}/secrets", { params: path, body: { key, value } }));
      setKey("");
      setValue("");
      list.reload();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <Section title="Secrets" id="secrets">
      <p class="muted">Values are write-only: they are never shown, here or anywhere.</p>
      <ProblemBox error={list.error} />
      <ul>
        {list.data?.secrets.map((s: Schemas["SecretKeyView"]) => (
          <li>
            <code>{s.key}</code> <span class="muted">updated <Time at={s.updated_at} /></span>{" "}
            <Action min="admin" label="Remove" danger run={async () => {
              await ok(api.DELETE("/api/plugins/{id}/secrets/{key}", { params: { header: T, path: { id, key: s.key } } }));
              list.reload();
            }} />
          </li>
        ))}
        {list.data && list.data.secrets.length === 0 && <li class="muted">No secrets set.</li>}
      </ul>
      {can("admin") && (
        <form class="inline" onSubmit={set}>
          <label>
            Key <input value={key} required onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Value <input type="password" autocomplete="off" value={value} required onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit">Set secret</button>
        </form>
      )}
      <ProblemBox error={error} />
    </Section>
  );
}

/** The plugin's console output, live (GET /api/plugins/{id}/logs/stream). */
function Logs({ id }: { id: string }) {
  const [lines, setLines] = useState<Schemas["LogLine"][]>([]);
  const [live, setLive] = useState(false);
  useEffect(() => {
    setLines([]);
    const h = follow<Schemas["LogLine"]>(
      "/api/plugins/{id}/logs/stream",
      `/api/plugins/${encodeURIComponent(id)}/logs/stream`,
      (l) => setLines((prev) => [...prev.slice(-499), l]),
      setLive,
    );
    return () => h.stop();
  }, [id]);
  return (
    <Section title="Live logs" id="logs">
      <p class="muted" data-testid="logs-state">{live ? "● live" : "○ connecting"}</p>
      <pre class="logs" data-testid="logs" tabIndex={0} aria-label="Plugin log lines">
        {lines.length === 0 ? "No output yet." : lines.map((l) => `${l.time.slice(11, 23)} ${l.level.padEnd(5)} ${l.message}\n`).join("")}
      </pre>
    </Section>
  );
}
