// alarms — the 告警滚动 feed and the alarm markers on the map, from
// GET /api/v1/alarms?state=active, and the per-district counts for shading
// the map (GET /api/v1/alarms/stats).

import { api, withQuery } from "./api.js";
import { el, shortTime, SEVERITY_NAMES } from "./format.js";
import { guarded } from "./panel.js";

function alarmItem(a, districtName) {
  return el("li", { class: `alarm sev-${a.severity}`, dataset: { id: a.id } },
    el("span", { class: "sev" }, SEVERITY_NAMES[a.severity] ?? a.severity),
    el("span", { class: "msg" }, a.message || a.rule_name || a.attr),
    el("span", { class: "where" }, districtName(a.district)),
    el("time", { datetime: a.raised_at }, shortTime(a.raised_at)),
    a.state === "acknowledged" ? el("span", { class: "ack" }, "已确认") : null);
}

export function createAlarms(ctx) {
  const panel = document.getElementById("p-alarms");
  const list = panel.querySelector("ul");

  async function feed() {
    const { alarms } = await api(withQuery("/api/v1/alarms", { state: "active", district: ctx.district, limit: 50 }));
    ctx.map.markers(alarms.map((a) => ({
      lon: a.lon, lat: a.lat, severity: a.severity, text: `${SEVERITY_NAMES[a.severity] ?? ""}告警：${a.message ?? a.rule_name}`,
    })));
    // A long feed rolls: the items twice over, so the loop has no seam.
    const items = alarms.map((a) => alarmItem(a, ctx.name));
    const rolling = items.length > 8;
    const copies = rolling ? items.map((li) => Object.assign(li.cloneNode(true), { ariaHidden: "true" })) : [];
    list.replaceChildren(...items, ...copies);
    list.classList.toggle("scrolling", rolling);
    if (!alarms.length)
      return `${ctx.scopeName()}当前无活动告警`;
  }

  async function stats() {
    const s = await api("/api/v1/alarms/stats?state=active");
    ctx.shade("alarms", s.by_district ?? {});
    const mine = ctx.district ? s.by_district?.[ctx.district] ?? 0 : s.total;
    panel.querySelector(".headline").textContent = `${ctx.scopeName()}活动告警 ${mine} 条`;
  }

  return {
    refresh: () => guarded(panel, async () => {
      await stats();
      return feed();
    }),
  };
}
