// cases — the operator page for cases (/cases.html): a filtered, paged list
// (GET /api/v1/cases) and the detail of the picked case (casedetail.js).

import { api, withQuery } from "./api.js";
import { createDetail } from "./casedetail.js";
import { el, shortTime } from "./format.js";
import { createMap, loadDistricts } from "./map.js";
import { roleName, signIn, signOut } from "./signin.js";
import { STATUS_NAMES } from "./workflow.js";

const PAGE = 50;

function options(select, pairs) {
  select.append(...pairs.map(([value, label]) => el("option", { value }, label)));
}

function caseRow(c, onPick) {
  return el("tr", { dataset: { id: c.id }, class: c.overdue ? "overdue" : null, onclick: () => onPick(c.id) },
    el("td", {}, el("span", { class: `timer ${c.timer}` }), c.id),
    el("td", {}, c.status_name),
    el("td", {}, c.category_name),
    el("td", {}, c.district_name ?? "—"),
    el("td", {}, c.department_name ?? "—"),
    el("td", {}, shortTime(c.created_at)),
    el("td", { class: "desc" }, c.description));
}

async function main() {
  const who = await signIn();
  document.getElementById("who").textContent = `${who.name ?? who.id} · ${roleName(who.role)}`;
  document.getElementById("signout").onclick = signOut;

  const form = document.getElementById("filters");
  const [districts, categories, departments] = await Promise.all([
    loadDistricts(), api("/api/v1/categories"), api("/api/v1/departments"),
  ]);
  options(form.elements.status, Object.entries(STATUS_NAMES));
  options(form.elements.district, districts.map((d) => [d.code, d.name]));
  options(form.elements.category, categories.categories.filter((c) => c.enabled).map((c) => [c.code, `${c.code} ${c.name}`]));
  options(form.elements.department, departments.departments.map((d) => [d.code, d.name]));

  const map = createMap(document.getElementById("case-map"), districts, () => {});
  const tbody = document.querySelector("#list tbody");
  const more = document.getElementById("more");
  const status = document.getElementById("list-state");
  let cursor = null;

  const detail = createDetail(document.getElementById("detail"), {
    departments: departments.departments, map, onChanged: () => load(),
  });
  const pick = (id) => {
    for (const tr of tbody.children)
      tr.classList.toggle("on", tr.dataset.id === id);
    detail.show(id).catch((err) => (document.getElementById("detail").textContent = `加载失败：${err.message}`));
  };

  async function load(append = false) {
    const q = Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== ""));
    try {
      const page = await api(withQuery("/api/v1/cases", { ...q, limit: PAGE, cursor: append ? cursor : null }));
      cursor = page.next_cursor;
      const rows = page.cases.map((c) => caseRow(c, pick));
      append ? tbody.append(...rows) : tbody.replaceChildren(...rows);
      more.hidden = !cursor;
      status.textContent = tbody.children.length ? `共显示 ${tbody.children.length} 件` : "没有符合条件的案件";
    } catch (err) {
      status.textContent = `查询失败（${err.status ?? "网络"}）：${err.message}`;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  more.onclick = () => load(true);
  await load();
  const wanted = new URLSearchParams(location.search).get("id");
  if (wanted)
    pick(wanted);
}

main();
