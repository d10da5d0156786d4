// Drives the admin port's /ui page in a real headless Chromium (Debian's /usr/bin/chromium) through
// Playwright, against a running devspaces-proxy.
//   node ui_browser.mjs URL SCREENSHOT
// The traffic comes from the caller: this script prints one JSON line {"need":"traffic",...} on
// stdout when it wants requests sent through the proxy and waits for one line on stdin ("sent").
// At the end it prints {"result":{...}} with what the page showed; any failed check exits 1 with
// the reason on stderr.
import readline from "node:readline";
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: ui_browser.mjs URL SCREENSHOT");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const wait = { timeout: 15000 };

const input = readline.createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();
async function ask(what) {
  console.log(JSON.stringify(what));
  const { value, done } = await lines.next();
  if (done || value.trim() !== "sent") throw new Error("no traffic sent for " + JSON.stringify(what));
}
function check(cond, message) {
  if (!cond) throw new Error(message);
}

// Paths of the rows the table shows, top (newest) first.
const rowPaths = (page) => page.$$eval("#rows tr", (trs) => trs.map((tr) => tr.children[3].textContent));
const rowCells = (page) =>
  page.$$eval("#rows tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const origin = new URL(url).origin;
  const foreign = [];
  page.on("request", (r) => {
    if (new URL(r.url()).origin !== origin) foreign.push(r.url());
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  const response = await page.goto(url);
  check(response.status() === 200, "GET /ui answered " + response.status());
  await page.waitForFunction(() => document.getElementById("state").textContent === "live", null, wait);
  const before = (await rowPaths(page)).length;

  // Live: records of requests sent after the page opened appear without a reload.
  await ask({ need: "traffic", round: 1 });
  await page.waitForFunction(() => {
    const paths = [...document.querySelectorAll("#rows tr")].map((tr) => tr.children[3].textContent);
    return ["/live-1", "/live-2", "/live-3"].every((p) => paths.includes(p)) &&
      paths.filter((p) => p === "/api").length >= 3;
  }, null, wait);
  const all = await rowCells(page);

  // A filter narrows the table: path prefix, then direction.
  await page.fill("#f-path", "/live-2");
  await page.waitForFunction(() => document.querySelectorAll("#rows tr").length === 1, null, wait);
  const byPath = await rowCells(page);
  await page.fill("#f-path", "");
  await page.selectOption("#f-direction", "outbound");
  await page.waitForFunction(
    (n) => document.querySelectorAll("#rows tr").length < n, all.length, wait);
  const byDirection = await rowCells(page);
  check(byDirection.every((c) => c[1] === "outbound"), "direction filter kept " + JSON.stringify(byDirection));

  // The detail pane of an outbound record: the route decision and every name tried.
  await page.click("#rows tr:first-child");
  await page.waitForSelector("#detail #tried", wait);
  const facts = Object.fromEntries(await page.$$eval("#detail > table:first-of-type tr",
    (trs) => trs.map((tr) => [tr.children[0].textContent, tr.children[1].textContent])));
  const tried = await page.$$eval("#tried tr",
    (trs) => trs.map((tr) => [tr.children[0].textContent, tr.children[1].textContent]));
  const selected = await page.$$eval("#rows tr.selected", (trs) => trs.length);
  await page.screenshot({ path: screenshot, fullPage: true });

  // Pause holds new records back (the table does not move); resume shows them.
  await page.selectOption("#f-direction", "");
  await page.click("#pause");
  const pausedLabel = await page.textContent("#pause");
  const rowsWhenPaused = (await rowPaths(page)).length;
  await ask({ need: "traffic", round: 2 });
  await page.waitForFunction(
    () => /^paused \([1-9][0-9]* new\)$/.test(document.getElementById("state").textContent), null, wait);
  const heldState = await page.textContent("#state");
  const pathsWhilePaused = await rowPaths(page);
  await page.click("#pause");
  await page.waitForFunction(() => [...document.querySelectorAll("#rows tr")]
    .some((tr) => tr.children[3].textContent === "/while-paused"), null, wait);
  const resumedLabel = await page.textContent("#pause");
  const resumedState = await page.textContent("#state");

  console.log(JSON.stringify({
    result: {
      before, all, byPath, byDirection, facts, tried, selected, pausedLabel, rowsWhenPaused,
      heldState, pathsWhilePaused, resumedLabel, resumedState, foreign, errors,
      csp: response.headers()["content-security-policy"] || null,
    },
  }));
} catch (e) {
  failed = true;
  console.error("ui_browser: " + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
  input.close();
}
process.exit(failed ? 1 : 0);
