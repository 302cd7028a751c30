// citizen — the citizen page (/m/): report a problem through Open311
// (category, description, photo, place), get a tracking number, follow it,
// rate it once closed, and see parking and air quality near a point.
// The page's api_key is a citizen app key (role citizen: it can report, upload
// a photo and read the nearby services, nothing else); it comes once as
// /m/?api_key=… and is kept in localStorage; without it the page can only
// follow requests. 我的上报 keeps each request's tracking number and its
// access_token (the secret that lets this phone, and only it, rate the request)
// in the phone's localStorage; following uses the public Open311 reads.

import { el, shortTime } from "./format.js";
import { aqiLevel, nearby } from "./nearby.js";
import { attributes, rate, request, services, submit, uploadPhoto } from "./open311.js";
import { createPickMap } from "./pickmap.js";
import { RATINGS } from "./workflow.js";

const APP_KEY = "citybrain.app_key";
const MINE = "citybrain.my_requests";
const $ = (sel) => document.querySelector(sel);

function appKey() {
  const url = new URL(location.href);
  const given = url.searchParams.get("api_key");
  if (given) {
    localStorage.setItem(APP_KEY, given);
    url.searchParams.delete("api_key");
    history.replaceState(null, "", url);
  }
  return localStorage.getItem(APP_KEY) ?? "";
}

// [{id, token, rating?}], newest first; older pages kept bare ids.
function myRequests() {
  let list;
  try {
    list = JSON.parse(localStorage.getItem(MINE) ?? "[]");
  } catch {
    list = [];
  }
  return (Array.isArray(list) ? list : []).map((x) => (typeof x === "string" ? { id: x, token: null } : x))
    .filter((x) => typeof x?.id === "string");
}

function mine(id) {
  return myRequests().find((x) => x.id === id) ?? null;
}

function remember(entry) {
  const old = mine(entry.id) ?? {};
  const list = [{ ...old, ...entry }, ...myRequests().filter((x) => x.id !== entry.id)];
  localStorage.setItem(MINE, JSON.stringify(list.slice(0, 50)));
}

function showTab(name) {
  for (const s of document.querySelectorAll("main > section"))
    s.hidden = s.id !== name;
  for (const b of document.querySelectorAll("nav button"))
    b.classList.toggle("on", b.dataset.tab === name);
}

// ---- 我要上报 ----

function attributeInput(a) {
  const name = `attr:${a.code}`;
  if (a.datatype === "singlevaluelist")
    return el("select", { name, required: a.required }, el("option", { value: "" }, "请选择"),
      a.values.map((v) => el("option", { value: v.key }, v.name)));
  if (a.datatype === "multivaluelist")
    return el("span", { class: "choices" }, a.values.map((v) => el("label", {}, el("input", { type: "checkbox", name, value: v.key }), v.name)));
  const type = { number: "number", datetime: "datetime-local" }[a.datatype] ?? "text";
  return el("input", { name, type, required: a.required });
}

async function showAttributes(service) {
  const box = $("#attributes");
  box.replaceChildren();
  if (!service)
    return;
  for (const a of await attributes(service))
    box.append(el("label", {}, `${a.description}${a.required ? "" : "（可选）"}`, attributeInput(a)));
}

function fieldsOf(form, place, mediaUrl) {
  const data = new FormData(form);
  const attrs = {};
  for (const [k, v] of data)
    if (k.startsWith("attr:") && v !== "") {
      const code = k.slice(5);
      const multi = form.querySelector(`[name="${k}"]`).type === "checkbox";
      attrs[code] = multi ? [...(attrs[code] ?? []), v] : v;
    }
  return {
    service_code: data.get("service_code"), description: data.get("description").trim(),
    lat: place.lat, long: place.lon, media_url: mediaUrl, first_name: data.get("first_name").trim(),
    phone: data.get("phone").trim(), attributes: attrs,
  };
}

async function setupReport(key, place) {
  const form = $("#report-form");
  const error = form.querySelector(".error");
  const list = await services();
  const groups = Map.groupBy(list, (s) => s.group || "其他");
  for (const [group, items] of groups)
    form.elements.service_code.append(el("optgroup", { label: group },
      items.map((s) => el("option", { value: s.service_code }, s.service_name))));
  form.elements.service_code.onchange = (e) =>
    showAttributes(list.find((s) => s.service_code === e.target.value)).catch((err) => (error.textContent = err.message));

  let mediaUrl = "";
  form.elements.photo.onchange = async () => {
    const file = form.elements.photo.files[0];
    mediaUrl = "";
    $("#photo-state").textContent = file ? "上传中…" : "";
    if (!file)
      return;
    try {
      mediaUrl = await uploadPhoto(file, key);
      $("#photo-state").textContent = "照片已上传";
    } catch (err) {
      form.elements.photo.value = "";
      $("#photo-state").textContent = `照片未上传：${err.message}`;
    }
  };

  if (!key) {
    form.querySelector("button[type=submit]").disabled = true;
    error.textContent = "本页面未配置应用密钥（api_key），暂不能在线上报，请拨打 12345 市民热线。";
  }
  form.onsubmit = async (e) => {
    e.preventDefault();
    error.textContent = "";
    if (!place.lon) {
      error.textContent = "请在地图上点选问题位置，或使用当前位置";
      return;
    }
    try {
      const reply = await submit(key, fieldsOf(form, place, mediaUrl));
      remember({ id: reply.service_request_id, token: reply.access_token ?? null });
      form.hidden = true;
      $("#receipt").hidden = false;
      $("#tracking").textContent = reply.service_request_id;
      $("#notice").textContent = reply.service_notice ?? "";
    } catch (err) {
      error.textContent = `提交失败：${err.message}`;
    }
  };
  $("#follow").onclick = () => track($("#tracking").textContent, key);
  $("#again").onclick = () => {
    form.reset();
    mediaUrl = "";
    $("#attributes").replaceChildren();
    $("#photo-state").textContent = "";
    form.hidden = false;
    $("#receipt").hidden = true;
  };
}

// ---- 进度查询 and 评价 ----

function requestCard(r) {
  const rows = [
    ["编号", r.service_request_id], ["状态", `${r.status === "open" ? "办理中" : "已办结"} · ${r.status_notes ?? ""}`],
    ["类别", r.service_name], ["描述", r.description], ["责任单位", r.agency_responsible ?? "待派遣"],
    ["办理时限", r.expected_datetime ? shortTime(r.expected_datetime) : r.service_notice ?? "—"],
    ["上报时间", shortTime(r.requested_datetime)], ["更新时间", shortTime(r.updated_datetime)],
  ];
  return el("div", { class: "card" }, el("dl", {}, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    r.media_url ? el("img", { src: r.media_url, alt: "上报照片" }) : null);
}

// A closed case waits for its rating while its state is 已结案 (status_notes);
// only the phone that reported it holds the access_token to give one.
const RATEABLE = "已结案";

function ratingBox(r, key) {
  const entry = mine(r.service_request_id);
  const rated = entry?.rating ? el("p", { class: "rated" }, `您的评价：${entry.rating}`) : null;
  if (r.status !== "closed" || r.status_notes !== RATEABLE)
    return rated;
  if (!entry?.token)
    return el("p", { class: "dim" }, "仅上报该问题的手机可以评价");
  const msg = el("p", { class: "error", role: "alert" });
  const comment = el("input", { name: "comment", maxlength: 200, placeholder: "说说您的意见（可选）" });
  const send = async (rating) => {
    try {
      await rate(r.service_request_id, entry.token, rating, comment.value.trim());
      remember({ id: r.service_request_id, rating });
      await track(r.service_request_id, key);
    } catch (err) {
      msg.textContent = `评价失败：${err.message}`;
    }
  };
  return el("div", { class: "rating" }, rated, el("p", {}, "问题已办结，请您评价："), comment,
    RATINGS.map((x) => el("button", { type: "button", dataset: { rating: x }, onclick: () => send(x) }, x)), msg);
}

async function track(id, key) {
  showTab("track");
  const out = $("#request");
  $("#track-form").elements.id.value = id;
  try {
    const r = await request(id);
    out.replaceChildren(requestCard(r), ratingBox(r, key) ?? "");
  } catch (err) {
    out.replaceChildren(el("p", { class: "error" }, `查询失败：${err.message}`));
  }
  renderMine(key);
}

function renderMine(key) {
  const list = myRequests();
  $("#mine").replaceChildren(...list.map(({ id, rating }) => el("li", {},
    el("button", { type: "button", dataset: { id }, onclick: () => track(id, key) }, id),
    rating ? el("span", { class: "dim" }, ` 已评价：${rating}`) : null)));
  $("#mine-empty").hidden = list.length > 0;
}

// ---- 周边服务 ----

async function showNearby(place, key) {
  const out = $("#nearby-result");
  if (!place.lon) {
    out.replaceChildren(el("p", { class: "dim" }, "请先在“我要上报”的地图上点选位置，或使用当前位置"));
    return;
  }
  if (!key) {
    out.replaceChildren(el("p", { class: "dim" }, "周边服务暂未开通（本页面未配置应用密钥）"));
    return;
  }
  try {
    const n = await nearby(place.lon, place.lat, key);
    out.replaceChildren(
      el("div", { class: "card" }, el("h3", {}, `${n.parking.radius_m} 米内停车位`),
        n.parking.total ? el("p", { class: "big" }, `空闲 ${n.parking.free} / 共 ${n.parking.total}`) : el("p", { class: "dim" }, "附近暂无联网车位")),
      el("div", { class: "card" }, el("h3", {}, "空气质量"),
        n.air ? el("p", { class: "big" }, `AQI ${Math.round(n.air.aqi)} · ${aqiLevel(n.air.aqi)}`) : el("p", { class: "dim" }, "附近暂无监测站"),
        n.air ? el("p", { class: "dim" }, `PM2.5 ${n.air.pm25 ?? "—"} μg/m³ · 监测站距此 ${(n.air.distance_m / 1000).toFixed(1)} 公里`) : null));
  } catch (err) {
    out.replaceChildren(el("p", { class: "error" }, `周边服务暂不可用：${err.message}`));
  }
}

async function main() {
  const key = appKey();
  const place = { lon: null, lat: null };
  for (const b of document.querySelectorAll("nav button"))
    b.onclick = () => {
      showTab(b.dataset.tab);
      if (b.dataset.tab === "nearby")
        showNearby(place, key);
    };
  const map = await createPickMap($("#pick-map"), (lon, lat) => {
    Object.assign(place, { lon, lat });
    $("#where").textContent = `已选位置：${lon.toFixed(5)}, ${lat.toFixed(5)}`;
  });
  $("#locate").onclick = () => navigator.geolocation.getCurrentPosition(
    (p) => map.set(p.coords.longitude, p.coords.latitude),
    (err) => ($("#where").textContent = `无法获取当前位置：${err.message}`), { timeout: 10000 });
  $("#track-form").onsubmit = (e) => {
    e.preventDefault();
    track(e.target.elements.id.value.trim(), key);
  };
  renderMine(key);
  await setupReport(key, place);
  document.body.dataset.ready = "1";
}

main();
