// KPI definitions and their CSV form. The SQL runs against the tenant's
// read model (`events(position, revision, id, type, time, data)`); `time`
// is RFC 3339 with or without fractional seconds, so it is compared through
// julianday(), never as text.

export interface Kpis {
  day: string;
  events_total: number;
  signups: number;
  builds: number;
  build_failures: number;
  build_success_rate: number | null;
  orders: number;
  revenue_cents: number;
  top_event_types: string;
}

export const COLUMNS: (keyof Kpis)[] = [
  "day",
  "events_total",
  "signups",
  "builds",
  "build_failures",
  "build_success_rate",
  "orders",
  "revenue_cents",
  "top_event_types",
];

/** One query: every KPI for events with `?1 <= time < ?2`. */
export const KPI_SQL = `
SELECT
  COUNT(*) AS events_total,
  COALESCE(SUM(type = 'auth.user.created'), 0) AS signups,
  COALESCE(SUM(type = 'build.completed'), 0) AS builds,
  COALESCE(SUM(type = 'build.completed' AND json_extract(data, '$.status') = 'failed'), 0) AS build_failures,
  COALESCE(SUM(type = 'order.paid'), 0) AS orders,
  COALESCE(SUM(CASE WHEN type = 'order.paid' THEN json_extract(data, '$.amount_cents') END), 0) AS revenue_cents
FROM events
WHERE julianday(time) >= julianday(?1) AND julianday(time) < julianday(?2)`;

export const TOP_TYPES_SQL = `
SELECT type, COUNT(*) AS n FROM events
WHERE julianday(time) >= julianday(?1) AND julianday(time) < julianday(?2)
GROUP BY type ORDER BY n DESC, type LIMIT 3`;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export function isDay(s: string): boolean {
  return DAY.test(s) && !Number.isNaN(Date.parse(s + "T00:00:00Z"));
}

/** The UTC day before the instant `iso` (a daily job reports on yesterday). */
export function dayBefore(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new Error(`not a time: ${iso}`);
  return new Date(t - 86_400_000).toISOString().slice(0, 10);
}

/** [start, end) of a UTC day as the read model's time strings. */
export function bounds(day: string): [string, string] {
  const start = Date.parse(day + "T00:00:00Z");
  return [new Date(start).toISOString(), new Date(start + 86_400_000).toISOString()];
}

function cell(v: unknown): string {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(k: Kpis): string {
  return COLUMNS.join(",") + "\n" + COLUMNS.map((c) => cell(k[c])).join(",") + "\n";
}
