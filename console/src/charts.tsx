// Small SVG charts: enough to see a trend without reading a table. Every
// chart has a text alternative (role="img" + aria-label).

export function BarChart(props: {
  label: string;
  values: { x: string; y: number; bad?: boolean }[];
  unit?: string;
  height?: number;
}) {
  const h = props.height ?? 80;
  // Few bars get room for their labels under them.
  const labelled = props.values.length <= 12;
  const step = labelled ? 64 : 14;
  const bw = labelled ? 40 : 10;
  const w = Math.max(props.values.length * step, 120);
  const max = Math.max(1, ...props.values.map((v) => v.y));
  const foot = labelled ? 26 : 14;
  const summary = props.values.map((v) => `${v.x}: ${v.y}${props.unit ?? ""}`).join(", ");
  return (
    <figure class="chart">
      <svg role="img" aria-label={`${props.label}. ${summary}`} viewBox={`0 0 ${w} ${h + foot}`} width={w} height={h + foot}>
        <line x1="0" y1={h} x2={w} y2={h} class="axis" />
        {props.values.map((v, i) => {
          const bh = Math.max(v.y > 0 ? 2 : 1, (v.y / max) * (h - 14));
          const x = i * step + 2;
          return (
            <g>
              <rect x={x} y={h - bh} width={bw} height={bh} class={v.bad ? "bar bad" : "bar"}>
                <title>{`${v.x}: ${v.y}${props.unit ?? ""}`}</title>
              </rect>
              {labelled && (
                <>
                  <text x={x + bw / 2} y={h - bh - 3} class="tick" text-anchor="middle">{`${v.y}`}</text>
                  <text x={x + bw / 2} y={h + 12} class="tick" text-anchor="middle">{v.x}</text>
                </>
              )}
            </g>
          );
        })}
        {!labelled && <text x="0" y={h + 12} class="tick">0</text>}
        {!labelled && <text x={w} y="10" class="tick" text-anchor="end">{`${max}${props.unit ?? ""}`}</text>}
      </svg>
      <figcaption>{props.label}</figcaption>
    </figure>
  );
}

export function LineChart(props: { label: string; points: { x: string; y: number }[]; unit?: string }) {
  const h = 80;
  const w = 260;
  const max = Math.max(1, ...props.points.map((p) => p.y));
  const n = Math.max(1, props.points.length - 1);
  const d = props.points
    .map((p, i) => `${i ? "L" : "M"}${((i / n) * (w - 4) + 2).toFixed(1)},${(h - (p.y / max) * (h - 4)).toFixed(1)}`)
    .join(" ");
  const summary = props.points.map((p) => `${p.x}: ${p.y}${props.unit ?? ""}`).join(", ");
  return (
    <figure class="chart">
      <svg role="img" aria-label={`${props.label}. ${summary}`} viewBox={`0 0 ${w} ${h + 14}`} width={w} height={h + 14}>
        <line x1="0" y1={h} x2={w} y2={h} class="axis" />
        <path d={d} class="line" />
        <text x="0" y={h + 12} class="tick">0</text>
        <text x={w} y="10" class="tick" text-anchor="end">{`${max}${props.unit ?? ""}`}</text>
      </svg>
      <figcaption>{props.label}</figcaption>
    </figure>
  );
}
