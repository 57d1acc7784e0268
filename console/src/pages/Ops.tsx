import { useEffect, useState } from "preact/hooks";
import { api, ok, type Schemas } from "../api/client";
import { follow } from "../api/sse";
import { Action, Badge, ProblemBox, Section, Time, useLoad } from "../ui";
import { BarChart } from "../charts";
import { current } from "../session";

/** Platform admin: tenants (create, suspend, resume) and the live
 * supervision tree with restart buttons. There is one node, so no cluster
 * view: the API has no cluster endpoint. */
export function Ops() {
  if (!current.value?.platformAdmin) {
    return <p>The operator views need the platform-admin token.</p>;
  }
  return (
    <>
      <h1>Operators</h1>
      <Tenants />
      <Tree />
    </>
  );
}

function Tenants() {
  const list = useLoad(() => ok(api.GET("/api/tenants")), []);
  const [slug, setSlug] = useState("");
  const [name, setName] = useState("");
  const [created, setCreated] = useState<Schemas["CreatedTenant"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  async function create(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      setCreated(await ok(api.POST("/api/tenants", { body: { slug, name } })));
      setSlug("");
      setName("");
      list.reload();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <Section title="Tenants" id="tenants">
      <ProblemBox error={list.error} />
      <table>
        <caption class="sr-only">Tenants</caption>
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col"><span class="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {list.data?.tenants.map((t) => (
            <tr data-testid={`tenant-${t.slug}`}>
              <td>
                {t.name} <code>{t.slug}</code> <div class="muted">{t.id}</div>
              </td>
              <td><Badge value={t.status} /></td>
              <td><Time at={t.created_at} /></td>
              <td>
                {t.status === "active" ? (
                  <Action min="owner" label="Suspend…" danger testid={`suspend-${t.slug}`} run={async () => {
                    const reason = window.prompt(`Suspend ${t.slug}: it serves nothing and its hooks, jobs and webhooks pause. Why?`);
                    if (!reason) return;
                    await ok(api.POST("/api/tenants/{id}/suspend", { params: { path: { id: t.id } }, body: { reason } }));
                    list.reload();
                  }} />
                ) : (
                  <Action min="owner" label="Resume" testid={`resume-${t.slug}`} run={async () => {
                    await ok(api.POST("/api/tenants/{id}/resume", { params: { path: { id: t.id } } }));
                    list.reload();
                  }} />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="inline" onSubmit={create}>
        <label>
          Slug <input value={slug} required onInput={(e) => setSlug((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Name <input value={name} required onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Create tenant</button>
      </form>
      <ProblemBox error={error} />
      {created?.owner_token && (
        <div class="notice" role="status">
          Tenant <code>{created.tenant.slug}</code> created. Its owner token, shown once:{" "}
          <code class="token">{created.owner_token.token}</code>
        </div>
      )}
    </Section>
  );
}

function Tree() {
  const [tree, setTree] = useState<Schemas["TreeView"] | null>(null);
  const [live, setLive] = useState(false);
  const [filter, setFilter] = useState("");
  useEffect(() => {
    const h = follow<Schemas["TreeView"]>("/api/ops/tree/stream", "/api/ops/tree/stream", setTree, setLive);
    return () => h.stop();
  }, []);
  const actors = (tree?.actors ?? []).filter(
    (a) => !filter || a.path.includes(filter) || a.status === filter || a.tenant_slug === filter || a.plugin_slug === filter,
  );
  const byStatus = new Map<string, number>();
  for (const a of tree?.actors ?? []) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
  return (
    <Section title="Supervision tree" id="tree">
      <p class="muted" data-testid="tree-live">{live ? "● live" : "○ connecting"}</p>
      <BarChart
        label="Actors by status"
        values={[...byStatus].map(([x, y]) => ({ x, y, bad: x === "failed" }))}
        height={50}
      />
      <p class="muted">{[...byStatus].map(([s, n]) => `${n} ${s}`).join(" · ")}</p>
      <label>
        Filter by path, slug or status <input value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
      </label>
      <table class="tree">
        <caption class="sr-only">Actors, a parent before its children</caption>
        <thead>
          <tr>
            <th scope="col">Actor</th>
            <th scope="col">Kind</th>
            <th scope="col">Status</th>
            <th scope="col">Restarts</th>
            <th scope="col">Queue</th>
            <th scope="col">Up</th>
            <th scope="col">Last error</th>
            <th scope="col"><span class="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {actors.map((a) => (
            <tr data-testid={`actor-${a.path}`} class={a.status === "failed" ? "failed" : ""}>
              <td style={{ paddingLeft: `${depth(a.path) * 1.5 + 0.4}em` }}>
                <code>{a.path.split("/").pop() || "/"}</code>
                {a.kind === "tenant_supervisor" && a.tenant_slug && <strong> {a.tenant_slug}</strong>}
                {a.plugin_slug && <strong> {a.plugin_slug}</strong>}
              </td>
              <td>{a.kind}</td>
              <td><Badge value={a.status} /></td>
              <td>{a.restarts}</td>
              <td>{a.queue_depth}</td>
              <td class="nowrap">{a.uptime_s != null ? uptime(a.uptime_s) : "—"}</td>
              <td>
                {a.last_error ? (
                  <>
                    <span class="error-text">{a.last_error}</span> <Time at={a.last_error_at} />
                  </>
                ) : (
                  <span class="muted">—</span>
                )}
              </td>
              <td>
                {a.status === "failed" && (
                  <Action min="owner" label="Restart" testid={`restart-${a.path}`} run={async () => {
                    await ok(api.POST("/api/ops/actors/{path}/restart", { params: { path: { path: a.path } } }));
                  }} />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

/** Depth in the tree: a tenant's supervisor 0, its children 1. */
function depth(path: string): number {
  const parts = path.split("/").filter(Boolean);
  return Math.max(0, parts.length - 2 - (parts[2] === "installations" ? 1 : 0));
}

function uptime(s: number): string {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
