// Per-plugin invocation metrics from GET /api/plugins/metrics (counts and
// latency percentiles since the server process started). The plugin page
// samples it every few seconds while open and charts invocations per
// interval; the list shows each plugin's error rate.
import { useEffect, useState } from "preact/hooks";
import { api, ok, T, type Schemas } from "../api/client";
import { BarChart, LineChart } from "../charts";
import { Section, useLoad } from "../ui";

type Metrics = Schemas["PluginMetricsView"];
const SAMPLE_MS = 5000;
const SAMPLES_KEPT = 60;

/** The tenant's metrics, loaded once, keyed by slug (for the list). */
export function useMetrics() {
  const m = useLoad(() => ok(api.GET("/api/plugins/metrics", { params: { header: T } })), []);
  return new Map((m.data?.plugins ?? []).map((p) => [p.slug, p]));
}

export function PluginRates({ m }: { m?: Metrics }) {
  if (!m) return <span class="muted">—</span>;
  if (m.invocations === 0) return <span class="muted">no invocations</span>;
  const rate = (m.errors / m.invocations) * 100;
  return (
    <span class={rate > 0 ? "error-text" : ""} data-testid="error-rate">
      {rate.toFixed(rate < 10 && rate > 0 ? 1 : 0)}% <span class="muted">({m.errors} of {m.invocations})</span>
    </span>
  );
}

/** Invocations per sample interval (line) and latency percentiles (bars). */
export function PluginCharts({ slug }: { slug: string }) {
  const [samples, setSamples] = useState<{ at: number; m: Metrics }[]>([]);
  useEffect(() => {
    let live = true;
    const sample = async () => {
      try {
        const all = await ok(api.GET("/api/plugins/metrics", { params: { header: T } }));
        const m = all.plugins.find((p) => p.slug === slug);
        if (live && m) setSamples((s) => [...s.slice(-SAMPLES_KEPT), { at: Date.now(), m }]);
      } catch {
        /* a failed sample is a gap in the chart */
      }
    };
    sample();
    const t = setInterval(sample, SAMPLE_MS);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [slug]);
  const last = samples.at(-1)?.m;
  if (!last) return null;
  const per = samples.slice(1).map((s, i) => ({
    x: new Date(s.at).toLocaleTimeString("en-GB"),
    y: s.m.invocations - samples[i].m.invocations,
  }));
  const ms = (us: number) => Math.round(us / 100) / 10;
  return (
    <Section title="Invocations and latency" id="metrics">
      <p>
        {last.invocations} invocations, {last.errors} errors since the server started. <PluginRates m={last} />
      </p>
      <div class="charts">
        {per.length > 1 ? (
          <LineChart label={`Invocations per ${SAMPLE_MS / 1000} s while this page is open`} points={per} />
        ) : (
          <p class="muted">Invocations per {SAMPLE_MS / 1000} s appear here while the page is open.</p>
        )}
        <BarChart
          label="Latency percentiles (ms)"
          unit=" ms"
          values={[
            { x: "p50", y: ms(last.p50_us) },
            { x: "p95", y: ms(last.p95_us) },
            { x: "p99", y: ms(last.p99_us) },
            { x: "max", y: ms(last.max_us) },
          ]}
        />
      </div>
    </Section>
  );
}
