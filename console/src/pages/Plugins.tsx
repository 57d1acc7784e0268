import { useState } from "preact/hooks";
import { api, ok, T, type Schemas } from "../api/client";
import { href, go } from "../router";
import { Badge, ProblemBox, Section, useLoad } from "../ui";
import { can } from "../session";
import { PluginRates, useMetrics } from "./PluginMetrics";

/** The tenant's plugins with status, version and error rate; upload. */
export function Plugins() {
  const list = useLoad(() => ok(api.GET("/api/plugins", { params: { header: T } })), []);
  const metrics = useMetrics();
  return (
    <>
      <h1>Plugins</h1>
      <ProblemBox error={list.error} />
      {list.data && (
        <table>
          <caption class="sr-only">Installed plugins</caption>
          <thead>
            <tr>
              <th scope="col">Plugin</th>
              <th scope="col">Status</th>
              <th scope="col">Version</th>
              <th scope="col">Error rate</th>
              <th scope="col">Permissions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.plugins.map((p) => (
              <tr data-testid={`plugin-${p.slug}`}>
                <td>
                  <a href={href("plugins", p.id)}>{p.name}</a> <code>{p.slug}</code>
                </td>
                <td>
                  <Badge value={p.status} />
                </td>
                <td>{p.current.version}</td>
                <td>
                  <PluginRates m={metrics.get(p.slug)} />
                </td>
                <td>{p.permissions.join(", ") || <span class="muted">none</span>}</td>
              </tr>
            ))}
            {list.data.plugins.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">
                  No plugins installed.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {can("developer") && <Upload onDone={(p) => go("plugins", p.id)} />}
    </>
  );
}

function Upload({ onDone }: { onDone: (p: Schemas["PluginView"]) => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      const form = new FormData();
      form.append("file", file);
      const res = await ok(
        api.POST("/api/plugins/upload", {
          params: { header: T },
          body: { file: "" },
          bodySerializer: () => form,
        }),
      );
      onDone(res.plugin);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <Section title="Upload a plugin" id="upload">
      <form onSubmit={submit} class="inline">
        <label>
          Plugin ZIP
          <input
            type="file"
            name="file"
            accept=".zip,application/zip"
            data-testid="upload-file"
            onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0] ?? null)}
          />
        </label>
        <button type="submit" disabled={!file || busy} data-testid="upload-submit">
          {busy ? "Uploading…" : "Upload"}
        </button>
      </form>
      <p class="muted">A new version of an installed slug upgrades it (secrets are kept). Every problem is listed with its location.</p>
      <ProblemBox error={error} />
    </Section>
  );
}

