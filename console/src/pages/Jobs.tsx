import { useState } from "preact/hooks";
import { api, ok, T, type Schemas } from "../api/client";
import { go, href } from "../router";
import { Action, Badge, Json, ProblemBox, Section, Time, useLoad } from "../ui";
import { BarChart } from "../charts";

/** Jobs of one plugin: schedules with the next fire time in the job's own
 * zone, run now, and the run history with status, duration, logs, result. */
export function Jobs({ plugin }: { plugin?: string }) {
  const plugins = useLoad(() => ok(api.GET("/api/plugins", { params: { header: T } })), []);
  const withJobs = (plugins.data?.plugins ?? []).filter(
    (p) => ((p.manifest as { jobs?: unknown[] })?.jobs ?? []).length > 0,
  );
  const id = plugin ?? withJobs[0]?.id;
  return (
    <>
      <h1>Jobs</h1>
      <ProblemBox error={plugins.error} />
      {plugins.data && withJobs.length === 0 && <p class="muted">No installed plugin declares jobs.</p>}
      {withJobs.length > 0 && (
        <label>
          Plugin{" "}
          <select value={id} onChange={(e) => go("jobs", (e.target as HTMLSelectElement).value)}>
            {withJobs.map((p) => (
              <option value={p.id}>{p.slug}</option>
            ))}
          </select>
        </label>
      )}
      {id && <PluginJobs id={id} key={id} />}
    </>
  );
}

function PluginJobs({ id }: { id: string }) {
  const path = { header: T, path: { id } };
  const jobs = useLoad(() => ok(api.GET("/api/plugins/{id}/jobs", { params: path })), [id]);
  const runs = useLoad(() => ok(api.GET("/api/plugins/{id}/runs", { params: { ...path, query: { limit: 50 } } })), [id]);
  const [open, setOpen] = useState<string | null>(null);
  const history = runs.data?.runs ?? [];
  return (
    <>
      <Section title="Schedules" id="schedules">
        <ProblemBox error={jobs.error} />
        <table>
          <caption class="sr-only">Jobs</caption>
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Schedule</th>
              <th scope="col">Next run (job's zone)</th>
              <th scope="col">Last run</th>
              <th scope="col">Runs</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {jobs.data?.jobs.map((j) => (
              <tr data-testid={`job-${j.name}`}>
                <td>{j.name}</td>
                <td>
                  <code>{j.schedule}</code> {j.timezone}
                  <div class="muted">catch-up {j.catch_up}, overlap {j.overlap}</div>
                </td>
                <td>{j.scheduled ? <Time at={j.next_run} zone={j.timezone} /> : <span class="muted">not scheduled</span>}</td>
                <td>{j.last_run ? <><Badge value={j.last_run.status} /> {j.last_run.duration_ms} ms</> : <span class="muted">never</span>}</td>
                <td>
                  {j.counts.succeeded} ok · {j.counts.failed} failed · {j.counts.timed_out} timed out · {j.counts.skipped} skipped
                </td>
                <td>
                  <Action min="developer" label="Run now" testid={`run-now-${j.name}`} run={async () => {
                    const r = await ok(api.POST("/api/plugins/{id}/jobs/{job_name}/run-now", {
                      params: { header: T, path: { id, job_name: j.name } },
                    }));
                    setOpen(r.run_id);
                    runs.reload();
                    jobs.reload();
                  }} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Run history" id="history">
        {history.length > 1 && <BarChart
          label="Duration of the last runs, oldest first (red: not succeeded)"
          unit=" ms"
          values={[...history].reverse().map((r) => ({ x: r.run_id.slice(-6), y: r.duration_ms ?? 0, bad: r.status !== "succeeded" }))}
        />}
        <ProblemBox error={runs.error} />
        <table>
          <caption class="sr-only">Runs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Job</th>
              <th scope="col">Status</th>
              <th scope="col">Trigger</th>
              <th scope="col">Scheduled for</th>
              <th scope="col">Duration</th>
            </tr>
          </thead>
          <tbody>
            {history.map((r) => (
              <>
                <tr data-testid={`run-${r.run_id}`}>
                  <td>
                    <button type="button" class="link" aria-expanded={open === r.run_id} onClick={() => setOpen(open === r.run_id ? null : r.run_id)}>
                      {r.run_id}
                    </button>
                  </td>
                  <td>{r.job}</td>
                  <td><Badge value={r.status} /></td>
                  <td>{r.trigger ?? "schedule"}</td>
                  <td><Time at={r.scheduled_for} /></td>
                  <td>{r.duration_ms != null ? `${r.duration_ms} ms` : "—"}</td>
                </tr>
                {open === r.run_id && (
                  <tr>
                    <td colSpan={6}>
                      <RunDetail run={r} />
                    </td>
                  </tr>
                )}
              </>
            ))}
            {runs.data && history.length === 0 && (
              <tr><td colSpan={6} class="muted">No runs yet.</td></tr>
            )}
          </tbody>
        </table>
        <p><a href={href("plugins", id)}>Plugin page</a></p>
      </Section>
    </>
  );
}

function RunDetail({ run }: { run: Schemas["RunView"] }) {
  return (
    <div class="run-detail" data-testid="run-detail">
      {run.error && <p class="error-text">{run.error}</p>}
      {run.skip_reason && <p class="muted">Skipped: {run.skip_reason}</p>}
      <h3>Result</h3>
      {run.result !== undefined ? <Json value={run.result} /> : run.result_truncated ? <pre tabIndex={0}>{run.result_truncated.preview}…</pre> : <p class="muted">none</p>}
      <h3>Logs</h3>
      <pre class="logs" tabIndex={0}>{run.logs.map((l) => `${l.time.slice(11, 23)} ${l.level.padEnd(5)} ${l.message}\n`).join("") || "No output."}</pre>
      {run.logs_dropped > 0 && <p class="muted">{run.logs_dropped} lines dropped</p>}
    </div>
  );
}
