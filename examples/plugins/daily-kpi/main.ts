import { job, route, type Ctx } from "extensor:sdk";
import { bounds, dayBefore, isDay, type Kpis, KPI_SQL, TOP_TYPES_SQL, toCsv } from "./kpi.js";

interface Totals {
  events_total: number;
  signups: number;
  builds: number;
  build_failures: number;
  orders: number;
  revenue_cents: number;
}

interface JobInput {
  scheduled_for?: string;
  /** Run-now may name the day to (re)compute, `YYYY-MM-DD`. */
  day?: string;
}

async function compute(ctx: Ctx, day: string): Promise<Kpis> {
  const [from, to] = bounds(day);
  const [totals] = await ctx.db.query<Totals>(KPI_SQL, [from, to]);
  const top = await ctx.db.query<{ type: string; n: number }>(TOP_TYPES_SQL, [from, to]);
  const builds = Number(totals?.builds ?? 0);
  const failures = Number(totals?.build_failures ?? 0);
  return {
    day,
    events_total: Number(totals?.events_total ?? 0),
    signups: Number(totals?.signups ?? 0),
    builds,
    build_failures: failures,
    build_success_rate: builds ? Math.round(((builds - failures) / builds) * 1000) / 1000 : null,
    orders: Number(totals?.orders ?? 0),
    revenue_cents: Number(totals?.revenue_cents ?? 0),
    top_event_types: top.map((r) => `${r.type}:${r.n}`).join(" "),
  };
}

job("compute_daily_kpis", "0 5 * * *", async (input, ctx) => {
  const args = (input ?? {}) as JobInput;
  const day = args.day ?? dayBefore(args.scheduled_for ?? new Date().toISOString());
  if (!isDay(day)) throw new Error(`day must be YYYY-MM-DD, got ${day}`);
  const kpis = await compute(ctx, day);
  await ctx.files.write(`kpi/${day}.csv`, toCsv(kpis));
  await ctx.files.write("kpi/latest.json", JSON.stringify(kpis));
  const eventId = await ctx.emit("kpi.daily", kpis as unknown as Record<string, string | number | null>);
  ctx.log("info", `KPIs for ${day}: ${kpis.events_total} events, ${kpis.signups} sign-ups`);
  return { ...kpis, event_id: eventId };
});

// GET /ext/daily-kpi/latest: the most recent computed KPIs.
route("GET", "/latest", async (_req, ctx) => {
  const latest = await ctx.files.read("kpi/latest.json");
  if (latest === null) return { status: 404, body: { error: "no KPIs computed yet" } };
  return { status: 200, body: JSON.parse(latest) };
});

// GET /ext/daily-kpi/days/2026-11-23: that day's CSV.
route("GET", "/days/:day", async (req, ctx) => {
  const day = req.params.day ?? "";
  if (!isDay(day)) return { status: 400, body: { error: "day must be YYYY-MM-DD" } };
  const csv = await ctx.files.read(`kpi/${day}.csv`);
  if (csv === null) return { status: 404, body: { error: `no KPIs for ${day}` } };
  return { status: 200, headers: { "content-type": "text/csv" }, body: csv };
});
