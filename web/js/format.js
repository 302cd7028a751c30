// format — numbers, percentages and times as the Chinese UI shows them, and a
// tiny element builder so text is always set as text (never parsed as HTML).

export function percent(ratio, digits = 1) {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(digits)}%` : "—";
}

// The AQI bands of HJ 633-2012: upper bound, level and its standard colour.
const AQI_BANDS = [
  { max: 50, name: "优", color: "#00e400" },
  { max: 100, name: "良", color: "#ffff00" },
  { max: 150, name: "轻度污染", color: "#ff7e00" },
  { max: 200, name: "中度污染", color: "#ff0000" },
  { max: 300, name: "重度污染", color: "#99004c" },
  { max: Infinity, name: "严重污染", color: "#7e0023" },
];

export function aqiBand(aqi) {
  return AQI_BANDS.find((b) => aqi <= b.max) ?? AQI_BANDS[AQI_BANDS.length - 1];
}

export function count(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("zh-CN") : "—";
}

function pad(n) {
  return String(n).padStart(2, "0");
}

// RFC 3339 → "11-23 14:05" in the browser's time zone; "—" when absent.
export function shortTime(rfc3339) {
  if (!rfc3339)
    return "—";
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime()))
    return "—";
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function clock(d = new Date()) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// el("li", {class: "x", dataset: {id}}, "text", childNode, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false)
      continue;
    if (k === "dataset")
      Object.assign(node.dataset, v);
    else if (k.startsWith("on"))
      node.addEventListener(k.slice(2), v);
    else
      node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity))
    if (c !== undefined && c !== null && c !== false)
      node.append(c instanceof Node ? c : String(c));
  return node;
}

export const SEVERITY_NAMES = { critical: "紧急", major: "重要", minor: "次要", warning: "提示" };
