// casedetail — one case on the operator page: its facts, the timeline of
// its history, its photos, its place on the map, and the actions the
// signed-in principal may take, each with the fields it needs. Which actions,
// their names and their fields come from the server ("actions" of GET
// /api/v1/cases/{id}, made from src/cases/workflow.c's table); refusals show
// the server's JSON error as it is.

import { api, ApiError } from "./api.js";
import { el, shortTime } from "./format.js";
import { RATINGS } from "./workflow.js";

const CHANNELS = { hotline: "12345热线", grid: "网格员", sensor: "物联感知", citizen: "市民上报", department: "部门" };

// One input per body field an action names in "needs"; required as the server says.
const FIELD_INPUTS = {
  note: (required) => el("label", {}, "说明", el("textarea", { name: "note", rows: 2, required })),
  reason: (required) => el("label", {}, "原因", el("textarea", { name: "reason", rows: 2, required })),
  hours: (required) => el("label", {}, "延期小时", el("input", { name: "hours", type: "number", min: 1, max: 720, required })),
  passed: () => el("label", {}, "核查结果", el("select", { name: "passed" },
    el("option", { value: "true" }, "通过"), el("option", { value: "false" }, "不通过（返工）"))),
  rating: () => el("label", {}, "评价", el("select", { name: "rating" }, RATINGS.map((r) => el("option", { value: r }, r)))),
};

function departmentInput(departments) {
  return el("label", {}, "责任单位", el("select", { name: "department" },
    el("option", { value: "" }, "按路由表"), departments.map((d) => el("option", { value: d.code }, d.name))));
}

// The JSON body of an action from its form's fields.
function bodyOf(form) {
  const body = {};
  for (const [k, v] of new FormData(form)) {
    if (v === "")
      continue;
    body[k] = k === "hours" ? Number(v) : k === "passed" ? v === "true" : v;
  }
  return body;
}

function errorText(err) {
  if (!(err instanceof ApiError))
    return `无法连接服务器：${err.message}`;
  return `操作被拒绝（${err.status} ${err.code}）：${err.message}${err.field ? `〔${err.field}〕` : ""}`;
}

function facts(c) {
  const rows = [
    ["编号", c.id], ["状态", c.status_name], ["类别", `${c.category_name}（${c.category}）`],
    ["来源", CHANNELS[c.channel] ?? c.channel], ["位置", [c.district_name, c.grid, c.address].filter(Boolean).join(" · ")],
    ["责任单位", c.department_name ?? "—"], ["紧急程度", c.priority === "urgent" ? "紧急" : "一般"],
    ["本环节时限", `${shortTime(c.deadline)}${c.overdue ? "（已超期）" : ""}`],
    ["上报人", [c.reporter?.name, c.reporter?.phone].filter(Boolean).join(" ") || "—"],
    ["评价", c.rating ?? "—"], ["合并至", c.duplicate_of ?? "—"],
  ];
  return el("dl", { class: "facts" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function timeline(history) {
  return el("ol", { class: "timeline" }, history.map((h) => el("li", {},
    el("time", { datetime: h.at }, shortTime(h.at)),
    el("b", {}, `${h.action_name ?? h.action} → ${h.to_name ?? h.to}`),
    el("span", { class: "by" }, `${h.role} ${h.by}`),
    h.note ? el("p", {}, h.note) : null,
    h.attachments?.length ? el("div", { class: "photos" }, h.attachments.map(photo)) : null)));
}

function photo(url) {
  return el("a", { href: url, target: "_blank" }, el("img", { src: url, alt: "附件照片", loading: "lazy" }));
}

export function createDetail(container, { departments, map, onChanged }) {
  function fieldInput(field, required) {
    if (field === "department")
      return departmentInput(departments);
    return FIELD_INPUTS[field]?.(required) ?? el("label", {}, field, el("input", { name: field, required }));
  }

  function actionForm(c, { action, name, needs = [], required = [] }) {
    const inputs = needs.map((f) => fieldInput(f, required.includes(f)));
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "action", dataset: { action } }, inputs, el("button", { type: "submit" }, name), error);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      form.querySelector("button").disabled = true;
      try {
        await api(`/api/v1/cases/${encodeURIComponent(c.id)}/${action}`, { body: bodyOf(form) });
        await show(c.id);
        onChanged();
      } catch (err) {
        error.textContent = errorText(err);
        form.querySelector("button").disabled = false;
      }
    });
    return form;
  }

  async function show(id) {
    const c = await api(`/api/v1/cases/${encodeURIComponent(id)}`);
    const actions = c.actions ?? [];
    container.replaceChildren(
      el("h2", {}, `${c.id} · ${c.status_name}`, el("span", { class: `timer ${c.timer}` })),
      el("p", { class: "description" }, c.description),
      facts(c),
      c.media?.length ? el("div", { class: "photos" }, c.media.map(photo)) : el("p", { class: "dim" }, "无照片"),
      el("h3", {}, "办理操作"),
      actions.length ? el("div", { class: "actions" }, actions.map((a) => actionForm(c, a))) : el("p", { class: "dim" }, "当前角色在此状态无可办操作"),
      el("h3", {}, "办理过程"),
      timeline(c.history ?? []));
    container.dataset.case = c.id;
    container.dataset.status = c.status;
    map.markers(Number.isFinite(c.lon) ? [{ lon: c.lon, lat: c.lat, severity: c.priority === "urgent" ? "critical" : "warning", text: c.description }] : []);
    map.select(c.district);
  }

  return { show };
}
