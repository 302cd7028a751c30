// The big screen at /: sign-in (a bad or revoked key is refused plainly),
// every panel drawn without console errors, numbers that change live as
// readings, cases and alarms arrive, a click on a district that filters the
// panels, and the honest states of a panel the role or the server lacks.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { citysimOnce, launch, openPage, screenshot, startServer } from "./harness.mjs";

let server, browser, key;

before(async () => {
  server = await startServer();
  key = server.key("operator", "--name", "大屏值班员");
  citysimOnce(server);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

// Sends one reading of attr for every entity of type through POST /api/v1/ingest.
async function ingest(type, attr, value) {
  const admin = server.key("admin");
  const { json } = await server.request("GET", `/api/v1/entities?type=${type}&limit=1000`, { key: admin });
  const readings = json.entities.map((e) => ({ entity: e.id, values: { [attr]: value } }));
  const r = await server.request("POST", "/api/v1/ingest", { key: admin, body: { readings } });
  assert.equal(r.json.accepted, readings.length, r.text);
  return readings.length;
}

async function signedIn(page) {
  await page.goto(server.url + "/");
  await page.fill("#signin input[name=key]", key);
  await page.click("#signin button[type=submit]");
  await page.waitForSelector("#signin", { state: "hidden" });
  await page.waitForFunction(() => document.body.dataset.refreshed);
}

test("a bad key is refused with a clear 401 message and not stored", async () => {
  const page = await openPage(browser, { allow: (text) => text.includes("status of 401") });
  await page.goto(server.url + "/");
  await page.fill("#signin input[name=key]", "cb_not_a_real_key");
  await page.click("#signin button[type=submit]");
  const error = page.locator("#signin .error");
  await assert.doesNotReject(error.filter({ hasText: "401" }).waitFor());
  assert.match(await error.textContent(), /密钥无效或已吊销（401）/);
  assert.equal(await page.evaluate(() => localStorage.getItem("citybrain.key")), null);
  await screenshot(page, "dashboard-bad-key");
  assert.deepEqual(page.problems, []);
});

test("the dashboard draws every panel and its numbers follow new readings", async () => {
  const page = await openPage(browser);
  await signedIn(page);
  assert.equal(await page.title(), "焦作城市大脑 · 城市运行中心");
  assert.match(await page.textContent("#who"), /大屏值班员 · 值班员/);
  const online = await page.textContent("#t-online .value");
  assert.match(online, /^\d+(\.\d)?%$/);
  assert.match(await page.textContent("#t-online .sub"), /共 4\d\d 台/);
  await page.waitForFunction(() => document.querySelector("#p-aqi").dataset.state === "ok");
  await page.waitForFunction(() => document.querySelector("#p-parking").dataset.state === "ok");

  // 实时读数/秒 needs two polls; readings sent between them must show.
  const before = await page.textContent("#t-rate .sub");
  await ingest("SmartMeter", "power_kw", 1.5);
  await page.waitForFunction((b) => {
    const sub = document.querySelector("#t-rate .sub").textContent;
    return sub !== b && /累计/.test(sub) && document.querySelector("#t-rate .value").textContent !== "—";
  }, before, { timeout: 20000 });
  await screenshot(page, "dashboard");
  assert.deepEqual(page.problems, []);
});

// A real mouse click on the district's centroid on the map canvas.
async function clickDistrict(page, lonLat) {
  const [x, y] = await page.evaluate((ll) => {
    const el = document.querySelector("#p-map .chart");
    const px = globalThis.echarts.getInstanceByDom(el).convertToPixel({ geoIndex: 0 }, ll);
    const box = el.getBoundingClientRect();
    return [box.left + px[0], box.top + px[1]];
  }, lonLat);
  await page.mouse.click(x, y);
}

test("clicking a district filters the panels; 全市 resets", async () => {
  const page = await openPage(browser);
  await signedIn(page);
  const all = await page.textContent("#t-online .sub");
  const { json } = await server.request("GET", "/api/v1/entities/stats?by=district", { key });
  const mine = json.groups.find((g) => g.district === "410811"); // 山阳区
  const { json: region } = await server.request("GET", "/api/v1/regions/410811", { key });

  await clickDistrict(page, region.properties.centroid);
  await page.waitForFunction(() => document.getElementById("scope").textContent === "山阳区");
  await page.waitForFunction((n) => document.querySelector("#t-online .sub").textContent.includes(`共 ${n} 台`), mine.total);
  assert.notEqual(mine.total, Number(all.match(/共 (\d+)/)[1]));
  assert.match(await page.textContent("#p-parking .headline"), /^山阳区 /);
  assert.equal(await page.isVisible("#reset"), true);
  await screenshot(page, "dashboard-district");

  await page.click("#reset");
  await page.waitForFunction(() => document.getElementById("scope").textContent === "全市");
  await page.waitForFunction((a) => document.querySelector("#t-online .sub").textContent === a, all);
  assert.equal(await page.isVisible("#reset"), false);
  assert.deepEqual(page.problems, []);
});

test("alarms and cases reach the screen live, without a reload", async () => {
  const page = await openPage(browser);
  await signedIn(page);
  await page.waitForFunction(() => document.getElementById("live").dataset.state === "live");
  const admin = server.key("admin");
  const open = Number(await page.textContent("#t-cases .value"));

  const created = await server.request("POST", "/api/v1/cases", { key: admin, body: {
    channel: "hotline", category: "01001", description: "大屏测试：井盖丢失", lon: 113.2308, lat: 35.2403 } });
  assert.equal(created.status, 201, created.text);
  await page.waitForFunction(() => document.body.dataset.lastEvent);
  await page.waitForFunction((n) => Number(document.querySelector("#t-cases .value").textContent) === n + 1, open);

  const rule = await server.request("POST", "/api/v1/rules", { key: admin, body: {
    name: "空气质量测试", kind: "threshold", scope: { type: "AirQualityObserved" }, attr: "aqi", op: ">", value: 150,
    severity: "major", category: "环境" } });
  assert.equal(rule.status, 201, rule.text);
  const stations = await ingest("AirQualityObserved", "aqi", 180);
  await page.waitForSelector("#p-alarms li.alarm");
  const { json } = await server.request("GET", "/api/v1/alarms/stats?state=active", { key: admin });
  assert.equal(json.total, stations);
  await page.waitForFunction((n) => document.querySelector("#p-alarms .headline").textContent === `全市活动告警 ${n} 条`, json.total);
  assert.match(await page.textContent("#p-alarms li.alarm .msg"), /AQI 180.* 超过阈值 150/);
  await page.click('#p-map [data-metric="alarms"]');
  await screenshot(page, "dashboard-alarms");
  assert.deepEqual(page.problems, []);
});

test("a key revoked while the screen is open brings back the sign-in with a 401 message", async () => {
  const doomed = server.key("operator", "--name", "将被吊销");
  const page = await openPage(browser, { allow: (text) => text.includes("status of 401") });
  await page.goto(server.url + "/");
  await page.fill("#signin input[name=key]", doomed);
  await page.click("#signin button[type=submit]");
  await page.waitForFunction(() => document.body.dataset.refreshed);
  const revoked = await server.request("DELETE", `/api/v1/keys/${doomed.split("_")[1]}`, { key: server.key("admin") });
  assert.equal(revoked.status, 200, revoked.text);
  await page.waitForSelector("#signin:not([hidden])", { timeout: 15000 });
  assert.match(await page.textContent("#signin .error"), /密钥已失效（401）/);
  assert.deepEqual(page.problems, []);
});

test("a department key sees the panels its role may read and is told about the rest", async () => {
  const dept = server.key("dept", "--department", "cgj", "--name", "城管局");
  const page = await openPage(browser, { allow: (text, url) => text.includes("status of 403") && url.endsWith("/metrics") });
  await page.goto(server.url + "/");
  await page.fill("#signin input[name=key]", dept);
  await page.click("#signin button[type=submit]");
  await page.waitForFunction(() => document.body.dataset.refreshed);
  assert.equal(await page.getAttribute("#t-rate", "data-state"), "denied");
  assert.equal(await page.textContent("#t-rate .state"), "无权查看（当前角色）");
  assert.equal(await page.getAttribute("#t-online", "data-state"), "ok");
  assert.deepEqual(page.problems, []);
});

test("a panel whose API the server lacks says 未启用 instead of showing numbers", async () => {
  const page = await openPage(browser, { allow: (text, url) => text.includes("status of 404") && url.includes("/api/v1/kpis") });
  await page.route("**/api/v1/kpis?*", (route) => route.fulfill({ status: 404, contentType: "application/json",
    body: JSON.stringify({ error: { code: "not_found", message: "no such resource: GET /api/v1/kpis" } }) }));
  await signedIn(page);
  for (const id of ["t-kpi", "p-ranking"]) {
    assert.equal(await page.getAttribute(`#${id}`, "data-state"), "missing");
    assert.equal(await page.textContent(`#${id} .state`), "暂无数据 · 接口未启用");
  }
  assert.equal(await page.textContent("#t-kpi .value"), "—");
  assert.deepEqual(page.problems, []);
});
