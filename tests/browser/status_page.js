// Loads Sluice's status page in headless Chromium (Debian's, driven by
// playwright-core) and checks what a person would see on it.
//
// Driven by tests/status_page.rs:
//   node status_page.js URL TOPIC GROUP LAG SCREENSHOT
// Prints "status page: all checks passed"; any failed check exits non-zero.

const { chromium } = require("playwright-core");

async function main() {
  const [url, topic, group, lag, screenshot] = process.argv.slice(2);
  const userDataDir = require("fs").mkdtempSync(require("path").join(require("os").tmpdir(), "sluice-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url, { waitUntil: "load", timeout: 20000 });
    // The page fills its tables from the JSON API, then refreshes itself.
    const topicRow = page.locator("#topics tbody tr", { hasText: topic });
    await topicRow.waitFor({ timeout: 20000 });
    const groupRow = page.locator("#groups tbody tr", { hasText: group });
    await groupRow.waitFor({ timeout: 20000 });
    const topicCells = await topicRow.locator("td").allInnerTexts();
    const groupCells = await groupRow.locator("td").allInnerTexts();
    if (topicCells[1] !== "1" || topicCells[2] !== "30") {
      throw new Error("topic row: " + JSON.stringify(topicCells));
    }
    if (groupCells[4] !== lag) {
      throw new Error(`group lag ${groupCells[4]}, expected ${lag}: ` + JSON.stringify(groupCells));
    }
    if (!groupCells[6].includes(`${topic}/0: 20 / 30, lag ${lag}`)) {
      throw new Error("committed offsets: " + groupCells[6]);
    }
    const clients = await page.locator("#clients tbody tr").allInnerTexts();
    if (!clients.some((c) => c.includes("librdkafka"))) {
      throw new Error("clients: " + JSON.stringify(clients));
    }
    // It refreshes itself: the status line changes without a reload.
    const first = await page.locator("#status").innerText();
    await page.waitForFunction((t) => document.querySelector("#status").innerText !== t, first, { timeout: 10000 });
    if (errors.length) throw new Error("page errors: " + errors.join("; "));
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log("status page: all checks passed");
  } finally {
    await context.close();
    require("fs").rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
