// dashboard — the big screen (大屏) at /: signs in, draws the map and the
// panels, refreshes them every 5 s and at once when the event stream says an
// alarm, case or KPI changed; a click on a district filters every panel.

import { ApiError } from "./api.js";
import { createAlarms } from "./alarms.js";
import { createCasework } from "./casework.js";
import { clock } from "./format.js";
import { createMap, loadDistricts } from "./map.js";
import { createSensing } from "./sensing.js";
import { roleName, signIn, signOut } from "./signin.js";
import { openStream } from "./stream.js";

const POLL_MS = 5000;
const METRICS = { devices: "设备数", cases: "在办案件", alarms: "活动告警" };

function createContext(districts) {
  const names = new Map(districts.map((d) => [d.code, d.name]));
  const shades = {};
  const ctx = {
    district: "",
    metric: "devices",
    name: (code) => names.get(code) ?? code ?? "—",
    scopeName: () => (ctx.district ? ctx.name(ctx.district) : "全市"),
    shade(metric, values) {
      shades[metric] = values;
      if (metric === ctx.metric)
        ctx.map.shade(values, METRICS[metric]);
    },
    showMetric(metric) {
      ctx.metric = metric;
      ctx.map.shade(shades[metric] ?? {}, shades[metric] ? METRICS[metric] : `${METRICS[metric]}（暂无数据）`);
      for (const b of document.querySelectorAll("#p-map [data-metric]"))
        b.classList.toggle("on", b.dataset.metric === metric);
    },
  };
  return ctx;
}

function setLive(state) {
  const text = { live: "实时推送", connecting: "连接中…", unavailable: "轮询 · 每5秒（事件流未启用）", unauthorized: "轮询 · 每5秒" };
  const badge = document.getElementById("live");
  badge.textContent = text[state] ?? state;
  badge.dataset.state = state;
}

async function main() {
  setInterval(() => (document.getElementById("clock").textContent = clock()), 1000);
  const who = await signIn();
  document.getElementById("who").textContent = `${who.name ?? who.id} · ${roleName(who.role)}`;
  document.getElementById("signout").onclick = signOut;

  const districts = await loadDistricts();
  const ctx = createContext(districts);
  ctx.map = createMap(document.querySelector("#p-map .chart"), districts, (code) => pick(code));
  const parts = [createSensing(ctx), createCasework(ctx), createAlarms(ctx)];
  const [, casework, alarms] = parts;

  let stream = null, keyLost = false;
  async function refresh(which = parts) {
    if (keyLost)
      return;
    try {
      await Promise.all(which.map((p) => p.refresh()));
      document.body.dataset.refreshed = String(Date.now());
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && !keyLost) {
        keyLost = true;
        stream?.close();
        await signIn(`密钥已失效（401）：${err.message}`);
        location.reload();
      }
    }
  }

  // Events within 300 ms are read as one refresh of the parts they touch;
  // a gap means events were missed, so everything is read again.
  const due = new Set();
  let timer = null;
  function onEvent(ev) {
    document.body.dataset.lastEvent = ev.id ?? "";
    const kind = ev.type.split(".")[0];
    for (const p of ev.type === "gap" ? parts : kind === "alarm" ? [alarms] : [casework])
      due.add(p);
    timer ??= setTimeout(() => {
      timer = null;
      const which = [...due];
      due.clear();
      refresh(which);
    }, 300);
  }

  function listen() {
    stream?.close();
    stream = openStream({ kinds: ["alarm", "case", "kpi"], district: ctx.district, onEvent, onState: setLive });
  }

  function pick(code) {
    ctx.district = code === ctx.district ? "" : code;
    ctx.map.select(ctx.district);
    document.getElementById("scope").textContent = ctx.scopeName();
    document.getElementById("reset").hidden = !ctx.district;
    listen();
    refresh();
  }

  document.getElementById("reset").onclick = () => pick("");
  for (const b of document.querySelectorAll("#p-map [data-metric]"))
    b.onclick = () => ctx.showMetric(b.dataset.metric);
  window.addEventListener("resize", () => {
    ctx.map.resize();
    parts.forEach((p) => p.resize?.());
  });

  ctx.showMetric("devices");
  listen();
  await refresh();
  setInterval(refresh, POLL_MS);
}

main();
