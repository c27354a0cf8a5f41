// Bar charts drawn as SVG by hand (no chart library: a few bars need ~60 lines, and nothing here runs eval).
const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

const nice = (v) => {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((x) => x >= v);
};

/** A bar chart of `values` (numbers) over `labels`, titled `title`; `fmt` formats a value for the axis and tips. */
export function barChart(title, labels, values, { fmt = (v) => String(v), unit = "" } = {}) {
  const W = 640, H = 240, L = 64, B = 40, T = 24, R = 8;
  const max = nice(Math.max(0, ...values));
  const n = Math.max(1, values.length);
  const bw = Math.min((W - L - R) / n, 72); // a lone bar stays a bar, not a wall
  const x0 = L + ((W - L - R) - n * bw) / 2;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart",
    "aria-label": `${title}: ${labels.map((l, i) => `${l} ${fmt(values[i])}`).join(", ")}` }, s("title", {}, title));
  svg.append(s("text", { x: L, y: 16, class: "chart-title" }, `${title}${unit ? ` (${unit})` : ""}`));
  for (const f of [0, 0.5, 1]) {
    svg.append(s("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: "grid" }));
    svg.append(s("text", { x: L - 6, y: y(max * f) + 4, class: "axis", "text-anchor": "end" }, fmt(max * f)));
  }
  const every = Math.ceil(n / 12);
  values.forEach((v, i) => {
    const x = x0 + i * bw + bw * 0.1;
    svg.append(s("rect", { x, y: y(v), width: Math.max(1, bw * 0.8), height: Math.max(0, H - B - y(v)), class: "bar" },
      s("title", {}, `${labels[i]}: ${fmt(v)}`)));
    if (i % every === 0) {
      svg.append(s("text", { x: x + bw * 0.4, y: H - B + 16, class: "axis", "text-anchor": "middle" }, String(labels[i])));
    }
  });
  if (!values.length) svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" }, "no data yet"));
  return svg;
}
