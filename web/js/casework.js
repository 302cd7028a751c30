// casework — the panels fed by cases: 待办案件/超期案件 and 近24小时案件
// (GET /api/v1/cases/stats), 按期结案率/满意率 and the department ranking
// (GET /api/v1/kpis).

import { api, withQuery } from "./api.js";
import { hourChart, rankChart } from "./charts.js";
import { count, percent } from "./format.js";
import { guarded, tile } from "./panel.js";

// Hour labels for the 24 counts of by_hour, oldest first, ending this hour.
function hourLabels(now = new Date()) {
  return Array.from({ length: 24 }, (_, i) => `${String((now.getHours() + 1 + i) % 24).padStart(2, "0")}时`);
}

export function createCasework(ctx) {
  const hours = hourChart(document.querySelector("#p-hours .chart"));
  const ranking = rankChart(document.querySelector("#p-ranking .chart"));

  function caseTile(stats) {
    tile("t-cases", count(stats.open), `超期 ${count(stats.overdue)} 件`);
    document.querySelector("#t-cases .value").classList.toggle("alert", stats.overdue > 0);
    if (!ctx.district)
      ctx.shade("cases", stats.by_district ?? {});
  }

  function caseHours(stats) {
    hours.set(hourLabels(), stats.by_hour ?? []);
  }

  async function kpiTile() {
    const { rows } = await api(`/api/v1/kpis?by=${ctx.district ? "district" : "city"}`);
    const row = ctx.district ? rows.find((r) => r.key === ctx.district) : rows[0];
    if (!row) {
      tile("t-kpi", "—", "");
      return `${ctx.scopeName()}暂无考核数据`;
    }
    tile("t-kpi", percent(row.on_time_close_rate), `满意率 ${percent(row.satisfaction_rate)} · 应结 ${count(row.due)} 件`);
  }

  async function departmentRanking() {
    const { rows } = await api("/api/v1/kpis?by=department");
    if (!rows.length) {
      ranking.set([], []);
      return "暂无部门考核数据";
    }
    const top = [...rows].sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9)).slice(0, 8);
    ranking.set(top.map((r) => r.name || r.key), top.map((r) => Math.round((r.score ?? 0) * 10) / 10));
  }

  return {
    refresh() {
      const stats = api(withQuery("/api/v1/cases/stats", { district: ctx.district }));
      return Promise.all([
        guarded(document.getElementById("t-cases"), async () => caseTile(await stats)),
        guarded(document.getElementById("p-hours"), async () => caseHours(await stats)),
        guarded(document.getElementById("t-kpi"), kpiTile),
        guarded(document.getElementById("p-ranking"), departmentRanking),
      ]);
    },
    resize() {
      hours.resize();
      ranking.resize();
    },
  };
}
