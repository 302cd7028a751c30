// sensing — the panels fed by devices: 设备在线率, 实时读数/秒 (from the
// /metrics counter), 各区空气质量 AQI (hourly history) and 停车占用率.

import { api, withQuery } from "./api.js";
import { barChart, aqiColor } from "./charts.js";
import { count, percent } from "./format.js";
import { guarded, tile } from "./panel.js";

const HOUR_MS = 3600 * 1000;

// "citybrain_ingest_readings_total{result="accepted"} 1500" → 1500
export function acceptedReadings(metricsText) {
  const m = metricsText.match(/^citybrain_ingest_readings_total\{result="accepted"\} (\d+(?:\.\d+)?)$/m);
  return m ? Number(m[1]) : null;
}

export function createSensing(ctx) {
  const aqi = barChart(document.querySelector("#p-aqi .chart"), { unit: "AQI", color: aqiColor });
  const parking = barChart(document.querySelector("#p-parking .chart"), { unit: "%", color: () => "#26a0da" });
  let last = null; // {n, t} of the previous /metrics poll

  async function devices() {
    const { groups } = await api("/api/v1/entities/stats?by=district");
    ctx.shade("devices", Object.fromEntries(groups.map((g) => [g.district, g.total])));
    const rows = groups.filter((g) => !ctx.district || g.district === ctx.district);
    const total = rows.reduce((s, g) => s + g.total, 0), online = rows.reduce((s, g) => s + g.online, 0);
    tile("t-online", total ? percent(online / total) : "—", `在线 ${count(online)} / 共 ${count(total)} 台`);
  }

  async function readingRate() {
    const n = acceptedReadings(await api("/metrics"));
    const t = performance.now();
    const rate = last && n !== null && t > last.t ? ((n - last.n) * 1000) / (t - last.t) : null;
    last = n === null ? null : { n, t };
    tile("t-rate", rate === null ? "—" : count(rate), rate === null ? "测量中（全市）" : `累计 ${count(n)} 条（全市）`);
  }

  async function airQuality() {
    const path = withQuery("/api/v1/series/aggregate", {
      attr: "aqi", type: "AirQualityObserved", group: "district", step: "1h", agg: "avg", from: Date.now() - 24 * HOUR_MS,
    });
    const { groups } = await api(path);
    const latest = groups.map((g) => [g.district, [...g.points].reverse().find((p) => p[1] !== null)?.[1]])
      .filter(([, v]) => v !== undefined);
    if (!latest.length) {
      aqi.set([], []);
      return "暂无空气质量读数";
    }
    aqi.set(latest.map(([c]) => ctx.name(c)), latest.map(([, v]) => Math.round(v)), latest.findIndex(([c]) => c === ctx.district));
  }

  async function parkingUse() {
    const { groups } = await api("/api/v1/entities/stats?by=district&type=ParkingSpot&attr=occupied");
    const rows = groups.filter((g) => g.count > 0);
    if (!rows.length) {
      parking.set([], []);
      return "暂无停车位读数";
    }
    parking.set(rows.map((g) => ctx.name(g.district)), rows.map((g) => Math.round(g.avg * 100)), rows.findIndex((g) => g.district === ctx.district));
    const mine = rows.filter((g) => !ctx.district || g.district === ctx.district);
    const used = mine.reduce((s, g) => s + g.avg * g.count, 0), n = mine.reduce((s, g) => s + g.count, 0);
    document.querySelector("#p-parking .headline").textContent = n ? `${ctx.scopeName()} ${percent(used / n)}（${count(n)} 个车位）` : "";
  }

  return {
    refresh: () => Promise.all([
      guarded(document.getElementById("t-online"), devices),
      guarded(document.getElementById("t-rate"), readingRate),
      guarded(document.getElementById("p-aqi"), airQuality),
      guarded(document.getElementById("p-parking"), parkingUse),
    ]),
    resize() {
      aqi.resize();
      parking.resize();
    },
  };
}
