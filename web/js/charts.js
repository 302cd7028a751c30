// charts — the dashboard's small ECharts: one look for all of them, and
// setters that take plain arrays so panels never build ECharts options.

import { aqiBand } from "./format.js";

const echarts = globalThis.echarts;
const AXIS = { axisLine: { lineStyle: { color: "#2d5a86" } }, axisLabel: { color: "#9cc3e6" }, splitLine: { lineStyle: { color: "#123a63" } } };

function base() {
  return {
    grid: { left: 8, right: 16, top: 12, bottom: 8, containLabel: true },
    tooltip: { trigger: "axis", backgroundColor: "rgba(6,22,43,.92)", textStyle: { color: "#cfe6ff" } },
    textStyle: { fontFamily: "inherit" },
    animationDuration: 300,
    animationDurationUpdate: 0, // a refresh every few seconds: no half-drawn frames
  };
}

// Vertical bars over categories; color(value, index) picks each bar's colour.
export function barChart(container, { unit = "", color = () => "#26a0da" } = {}) {
  const chart = echarts.init(container);
  chart.setOption({
    ...base(),
    xAxis: { type: "category", data: [], ...AXIS, axisLabel: { color: "#9cc3e6", interval: 0, fontSize: 12 } },
    yAxis: { type: "value", name: unit, nameTextStyle: { color: "#9cc3e6" }, ...AXIS },
    series: [{ type: "bar", barMaxWidth: 22, data: [] }],
  });
  return {
    set(labels, values, highlight = -1) {
      const data = values.map((v, i) => ({
        value: v,
        itemStyle: { color: color(v, i), borderColor: i === highlight ? "#ffd54a" : undefined, borderWidth: i === highlight ? 2 : 0 },
      }));
      chart.setOption({ xAxis: { data: labels }, series: [{ data }] });
    },
    resize: () => chart.resize(),
  };
}

// Horizontal bars, best first (a ranking).
export function rankChart(container) {
  const chart = echarts.init(container);
  chart.setOption({
    ...base(),
    grid: { ...base().grid, right: 40 },
    xAxis: { type: "value", max: 100, ...AXIS },
    yAxis: { type: "category", inverse: true, data: [], ...AXIS },
    series: [{ type: "bar", barMaxWidth: 16, data: [], label: { show: true, position: "right", color: "#e8f4ff" },
      itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 1, 0, [{ offset: 0, color: "#155e96" }, { offset: 1, color: "#4fc3f7" }]) } }],
  });
  return {
    set(labels, values) {
      chart.setOption({ yAxis: { data: labels }, series: [{ data: values }] });
    },
    resize: () => chart.resize(),
  };
}

// A line with area over the last 24 hours (oldest first).
export function hourChart(container) {
  const chart = echarts.init(container);
  chart.setOption({
    ...base(),
    xAxis: { type: "category", boundaryGap: false, data: [], ...AXIS },
    yAxis: { type: "value", minInterval: 1, ...AXIS },
    series: [{ type: "line", smooth: true, symbol: "none", data: [], lineStyle: { color: "#4fc3f7" },
      areaStyle: { color: new echarts.graphic.LinearGradient(0, 0, 0, 1, [{ offset: 0, color: "rgba(79,195,247,.5)" }, { offset: 1, color: "rgba(79,195,247,0)" }]) } }],
  });
  return {
    set(labels, values) {
      chart.setOption({ xAxis: { data: labels }, series: [{ data: values }] });
    },
    resize: () => chart.resize(),
  };
}

// The colours of China's AQI levels (HJ 633-2012).
export function aqiColor(aqi) {
  return aqiBand(aqi).color;
}
