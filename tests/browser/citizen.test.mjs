// A citizen's report from the form on /m/ to closure and rating: the citizen
// page (with a citizen app key, which reads no cases) submits through Open311
// with a photo and the phone's position and keeps the tracking number and
// access token on the phone, the case desk (/cases.html) takes the case
// through its workflow (and shows a refused action's error plainly), and the
// same phone rates it through the Open311 rating extension; another phone
// cannot. Also: parking and air quality near the phone, and the page without
// an api_key.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { citysimOnce, launch, openPage, screenshot, startServer } from "./harness.mjs";

const PNG = Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
  "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5272ee60000000049454e44ae426082", "hex");
const JIEFANG = { longitude: 113.2308, latitude: 35.2403 }; // 解放区

let server, browser, appKey, adminKey, phone;

before(async () => {
  server = await startServer();
  appKey = server.key("citizen", "--name", "市民端");
  adminKey = server.key("admin");
  citysimOnce(server);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

async function citizenPage() {
  const page = await openPage(browser, {
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
    geolocation: JIEFANG, permissions: ["geolocation"],
  });
  await page.goto(`${server.url}/m/?api_key=${encodeURIComponent(appKey)}`);
  await page.waitForFunction(() => document.body.dataset.ready);
  return page;
}

async function operatorPage(id, allow) {
  const page = await openPage(browser, { allow });
  await page.goto(server.url + "/cases.html");
  await page.evaluate((k) => localStorage.setItem("citybrain.key", k), adminKey);
  await page.goto(`${server.url}/cases.html?id=${id}`);
  await page.waitForSelector(`#detail[data-case="${id}"]`);
  return page;
}

async function act(page, action, fill = async () => {}) {
  const before = await page.getAttribute("#detail", "data-status");
  const form = page.locator(`form.action[data-action="${action}"]`);
  await fill(form);
  await form.locator("button[type=submit]").click();
  await page.waitForFunction((b) => document.querySelector("#detail").dataset.status !== b, before);
  return page.getAttribute("#detail", "data-status");
}

let id;

test("a citizen reports a problem with a photo and the phone's position", async () => {
  const page = phone = await citizenPage();
  await page.selectOption("select[name=service_code]", "01001");
  await page.selectOption("select[name='attr:condition']", "damaged");
  await page.fill("textarea[name=description]", "人民路口井盖破损，有人差点绊倒");

  await page.setInputFiles("input[name=photo]", { name: "note.txt", mimeType: "text/plain", buffer: Buffer.from("hi") });
  await page.waitForSelector("#photo-state:has-text('照片未上传')");
  assert.match(await page.textContent("#photo-state"), /JPEG、PNG 或 WebP/);
  await page.setInputFiles("input[name=photo]", { name: "well.png", mimeType: "image/png", buffer: PNG });
  await page.waitForSelector("#photo-state:has-text('照片已上传')");

  await page.click("#locate");
  await page.waitForSelector("#where:has-text('已选位置')");
  await page.click("#report-form button[type=submit]");
  await page.waitForSelector("#receipt:not([hidden])");
  id = (await page.textContent("#tracking")).trim();
  assert.match(id, /^C\d{8}-\d{6}$/);
  await screenshot(page, "citizen-submitted");

  const c = (await server.request("GET", `/api/v1/cases/${id}`, { key: adminKey })).json;
  assert.equal(c.channel, "citizen");
  assert.equal(c.category, "01001");
  assert.equal(c.district, "410802");
  assert.equal(c.media.length, 1);
  assert.equal(c.history[0].role, "citizen");
  // the phone keeps the tracking number and the access token; the app key itself reads no case
  const [kept] = await page.evaluate(() => JSON.parse(localStorage.getItem("citybrain.my_requests")));
  assert.equal(kept.id, id);
  assert.match(kept.token, /^cbf_[0-9a-f]{32}$/);
  assert.equal((await server.request("GET", `/api/v1/cases/${id}`, { key: appKey })).status, 403);
  assert.equal((await server.request("GET", "/api/v1/cases", { key: appKey })).status, 403);
  assert.deepEqual(page.problems, []);
});

test("the operator page takes the case to closure and shows a refused action's error", async () => {
  assert.ok(id, "needs the citizen's report");
  const page = await operatorPage(id, (text, url) => text.includes("status of 409") && url.endsWith(`/${id}/accept`));
  assert.equal(await page.getAttribute("#detail", "data-status"), "reported");
  assert.equal(await page.locator("#detail > .photos img").count(), 1);

  // Someone else accepts it meanwhile: this page's 受理 is refused with 409.
  await server.request("POST", `/api/v1/cases/${id}/accept`, { key: adminKey, body: {} });
  await page.locator('form.action[data-action="accept"] button').click();
  const error = page.locator('form.action[data-action="accept"] .error');
  await error.filter({ hasText: "409" }).waitFor();
  assert.match(await error.textContent(), /操作被拒绝（409 conflict）：.*accept is not allowed/);

  await page.reload();
  await page.waitForSelector(`#detail[data-case="${id}"]`);
  // the buttons are the server's "actions" for this key, in its words
  const { actions } = (await server.request("GET", `/api/v1/cases/${id}`, { key: adminKey })).json;
  assert.deepEqual(actions.map((a) => a.action), ["file", "reject"]);
  assert.deepEqual(await page.locator("form.action").evaluateAll((forms) =>
    forms.map((f) => [f.dataset.action, f.querySelector("button").textContent, f.querySelector("[name=note]")?.required])),
  [["file", "立案", undefined], ["reject", "不予受理/作废", true]]);
  let status = await act(page, "file");
  if (status === "filed")
    status = await act(page, "dispatch");
  assert.equal(status, "dispatched");
  assert.equal(await act(page, "start"), "in_progress");
  assert.equal(await act(page, "handle", (f) => f.locator("textarea[name=note]").fill("已更换井盖")), "handled");
  assert.equal(await act(page, "check", (f) => f.locator("select[name=passed]").selectOption("true")), "checked");
  assert.equal(await act(page, "close"), "closed");
  assert.ok(await page.locator(".timeline li").count() >= 8);
  await screenshot(page, "cases-closed");
  assert.deepEqual(page.problems, []);
});

test("another phone can follow the closed case but not rate it", async () => {
  assert.ok(id, "needs the citizen's report");
  const page = await citizenPage();
  await page.click("nav button[data-tab=track]");
  await page.fill("#track-form input[name=id]", id);
  await page.click("#track-form button[type=submit]");
  await page.waitForSelector("#request .card");
  assert.match(await page.textContent("#request .card"), /已办结 · 已结案/);
  assert.match(await page.textContent("#request"), /仅上报该问题的手机可以评价/);
  assert.equal(await page.locator(".rating button").count(), 0);
  assert.equal(await page.locator("#mine li").count(), 0);
  assert.deepEqual(page.problems, []);
});

test("the reporting phone follows the closed case from 我的上报 and rates it", async () => {
  assert.ok(id && phone, "needs the citizen's report on this phone");
  const page = phone;
  await page.goto(`${server.url}/m/`); // the app key and 我的上报 stay on the phone
  await page.waitForFunction(() => document.body.dataset.ready);
  await page.click("nav button[data-tab=track]");
  await page.click(`#mine button[data-id="${id}"]`);
  await page.waitForSelector(".rating button[data-rating=满意]");
  assert.match(await page.textContent("#request .card"), /已办结 · 已结案/);
  await page.fill(".rating input[name=comment]", "井盖换好了，谢谢");
  await screenshot(page, "citizen-rating");
  await page.click(".rating button[data-rating=满意]");
  await page.waitForSelector(".rated");
  assert.equal(await page.textContent(".rated"), "您的评价：满意");
  assert.match(await page.textContent("#request .card"), /已评价/);
  assert.equal(await page.locator(".rating button").count(), 0);
  assert.match(await page.textContent("#mine"), /已评价：满意/);
  await screenshot(page, "citizen-rated");
  const c = (await server.request("GET", `/api/v1/cases/${id}`, { key: adminKey })).json;
  assert.equal(c.rating, "满意");
  assert.equal(c.status, "evaluated");
  const last = c.history.at(-1);
  assert.deepEqual([last.action, last.by, last.role, last.note], ["evaluate", "citizen", "citizen", "井盖换好了，谢谢"]);
  assert.deepEqual(page.problems, []);
});

test("without an api_key the citizen page says it cannot submit", async () => {
  const page = await openPage(browser, { viewport: { width: 390, height: 844 } });
  await page.goto(`${server.url}/m/`);
  await page.waitForFunction(() => document.body.dataset.ready);
  assert.equal(await page.isDisabled("#report-form button[type=submit]"), true);
  assert.match(await page.textContent("#report-form .error"), /未配置应用密钥/);
  assert.deepEqual(page.problems, []);
});

test("周边服务 shows the free parking bays and the air quality near the phone", async () => {
  const page = await citizenPage();
  await page.click("#locate");
  await page.waitForSelector("#where:has-text('已选位置')");
  await page.click("nav button[data-tab=nearby]");
  await page.waitForSelector("#nearby-result .card");
  const near = (type, r) => server.request("GET",
    `/api/v1/entities?near=${JIEFANG.longitude},${JIEFANG.latitude},${r}&type=${type}&limit=1000`, { key: adminKey });
  const bays = (await near("ParkingSpot", 1000)).json.entities;
  const free = bays.filter((e) => e.values.occupied.value === 0).length;
  const parking = await page.textContent("#nearby-result .card:nth-child(1)");
  assert.match(parking, bays.length ? new RegExp(`空闲 ${free} / 共 ${bays.length}`) : /附近暂无联网车位/);
  const station = (await near("AirQualityObserved", 10000)).json.entities[0];
  assert.ok(station, "citysim puts an air station in every district");
  assert.match(await page.textContent("#nearby-result .card:nth-child(2)"), new RegExp(`AQI ${Math.round(station.values.aqi.value)} · `));
  await screenshot(page, "citizen-nearby");
  assert.deepEqual(page.problems, []);
});
