// casedetail — one case on the operator page: its facts, the timeline of
// its history, its photos, its place on the map, and the actions the
// signed-in role may take, each with the fields it needs. Refusals show the
// server's JSON error as it is.

import { api, ApiError } from "./api.js";
import { el, shortTime } from "./format.js";
import { ACTIONS, actionsFor, RATINGS, STATUS_NAMES } from "./workflow.js";

const CHANNELS = { hotline: "12345热线", grid: "网格员", sensor: "物联感知", citizen: "市民上报", department: "部门" };

const FIELD_INPUTS = {
  note: () => el("label", {}, "说明", el("textarea", { name: "note", rows: 2 })),
  reason: () => el("label", {}, "原因", el("textarea", { name: "reason", rows: 2, required: true })),
  hours: () => el("label", {}, "延期小时", el("input", { name: "hours", type: "number", min: 1, max: 720, required: true })),
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
    ["编号", c.id], ["状态", c.status_name ?? STATUS_NAMES[c.status]], ["类别", `${c.category_name}（${c.category}）`],
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
    el("b", {}, `${ACTIONS[h.action]?.label ?? h.action} → ${STATUS_NAMES[h.to] ?? h.to}`),
    el("span", { class: "by" }, `${h.role} ${h.by}`),
    h.note ? el("p", {}, h.note) : null,
    h.attachments?.length ? el("div", { class: "photos" }, h.attachments.map(photo)) : null)));
}

function photo(url) {
  return el("a", { href: url, target: "_blank" }, el("img", { src: url, alt: "附件照片", loading: "lazy" }));
}

export function createDetail(container, { role, departments, map, onChanged }) {
  function actionForm(c, action) {
    const def = ACTIONS[action];
    const inputs = (def.fields ?? []).map((f) => (f === "department" ? departmentInput(departments) : FIELD_INPUTS[f]()));
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "action", dataset: { action } }, inputs, el("button", { type: "submit" }, def.label), error);
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
    const actions = actionsFor(c.status, role);
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
