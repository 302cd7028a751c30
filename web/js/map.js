// map — the city map: districts from /api/v1/regions drawn with ECharts,
// shaded by one measure per district, with the active alarms as markers;
// clicking a district picks it (the dashboard then filters every panel).

import { api } from "./api.js";

const echarts = globalThis.echarts;
const MAP = "citybrain-districts";
const SEVERITY_COLORS = { critical: "#ff4d4f", major: "#ff9f43", minor: "#ffd54a", warning: "#4fc3f7" };

// Registers the districts' outlines with ECharts; returns [{code, name, centroid}].
export async function loadDistricts() {
  const list = await api("/api/v1/regions?level=district");
  const features = await Promise.all(list.regions.map((r) => api(`/api/v1/regions/${encodeURIComponent(r.code)}`)));
  echarts.registerMap(MAP, { type: "FeatureCollection", features });
  return list.regions.map((r) => ({ code: r.code, name: r.name, centroid: r.centroid }));
}

function baseOption() {
  return {
    tooltip: { trigger: "item", backgroundColor: "rgba(6,22,43,.92)", textStyle: { color: "#cfe6ff" } },
    geo: {
      map: MAP, roam: false, layoutSize: "96%",
      label: { show: true, color: "#e8f4ff", fontSize: 14 },
      itemStyle: { borderColor: "#4fc3f7", borderWidth: 1, areaColor: "#0b2b4f" },
      emphasis: { label: { color: "#fff" }, itemStyle: { areaColor: "#1d5c8f" } },
      select: { disabled: true },
    },
    visualMap: {
      seriesIndex: 0, min: 0, max: 1, calculable: false, left: 16, bottom: 16,
      inRange: { color: ["#0b2b4f", "#155e96", "#26a0da", "#f0c419", "#ff6b3d"] },
      textStyle: { color: "#9cc3e6" },
    },
    series: [
      { type: "map", geoIndex: 0, name: "", data: [] },
      {
        type: "effectScatter", coordinateSystem: "geo", name: "标记", symbolSize: 12, zlevel: 2,
        rippleEffect: { scale: 3.5, brushType: "stroke" }, data: [],
        itemStyle: { color: (p) => SEVERITY_COLORS[p.data.severity] ?? "#ff4d4f" },
        // The text is a case description or an alarm message, i.e. citizens'
        // words: ECharts puts a formatter's string into the page as HTML.
        tooltip: { formatter: (p) => echarts.format.encodeHTML(p.data.text ?? "") },
      },
    ],
  };
}

export function createMap(container, districts, onPick) {
  const chart = echarts.init(container, null, { renderer: "canvas" });
  const byName = new Map(districts.map((d) => [d.name, d.code]));
  const byCode = new Map(districts.map((d) => [d.code, d.name]));
  chart.setOption(baseOption());
  chart.on("click", (p) => {
    const code = byName.get(p.name);
    if (code && (p.componentType === "geo" || p.seriesType === "map"))
      onPick(code);
  });

  return {
    // values: {code: number}; label: what the numbers are (图例 title).
    shade(values, label) {
      const data = districts.map((d) => ({ name: d.name, value: values[d.code] ?? 0 }));
      const max = Math.max(1, ...data.map((d) => d.value));
      chart.setOption({ visualMap: { max, text: [label, ""] }, series: [{ name: label, data }] });
    },
    // points: [{lon, lat, severity (the colour), text (the tooltip)}]
    markers(points) {
      const data = points.filter((p) => Number.isFinite(p.lon) && Number.isFinite(p.lat))
        .map((p) => ({ value: [p.lon, p.lat], severity: p.severity, text: p.text }));
      chart.setOption({ series: [{}, { data }] });
    },
    select(code) {
      const name = byCode.get(code);
      const regions = name ? [{ name, itemStyle: { borderColor: "#ffd54a", borderWidth: 3 } }] : [];
      chart.setOption({ geo: { regions } });
    },
    resize: () => chart.resize(),
  };
}
