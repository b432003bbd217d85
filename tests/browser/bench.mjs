// The inbox's targets (docs/benchmarks.md, "The web inbox"): first paint of /inbox with
// 1,000 conversations, the page's weight, and a delivery to visible in the open thread over
// 200 deliveries. Run by `scripts/bench.sh inbox` against the release build.

import { chromium } from 'playwright-core';
import { Service, launch, signIn, conversationId, ADMIN, POST_A } from './harness.mjs';

const CONVERSATIONS = Number(process.env.INBOX_CONVERSATIONS || 1000);
const LOADS = Number(process.env.INBOX_LOADS || 10);
const DELIVERIES = Number(process.env.INBOX_DELIVERIES || 200);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const ms = (x) => `${x.toFixed(1)} ms`;

const service = new Service();
await service.start();
let context;
try {
  const started = Date.now();
  const open = conversationId();
  const messages = Array.from({ length: CONVERSATIONS }, (_, i) => ({
    conversation: conversationId(),
    post: `QZb${String(i % 700).padStart(5, '0')}`,
    side: i % 2 ? 'SELLER' : 'BUYER',
    text: `سلام، این آگهی هنوز موجوده؟ قیمت نهایی چنده؟ (${i})`,
  }));
  await service.deliverAll(messages, 32);
  // The thread watched below: the newest conversation, at the top of the list.
  await service.deliver({ conversation: open, post: POST_A, text: 'سلام' });
  console.log(`seeded ${CONVERSATIONS + 1} conversations in ${Date.now() - started} ms`);

  context = await launch(chromium);
  const page = context.pages()[0] || (await context.newPage());
  await signIn(page, service.url, ADMIN);

  const paints = [];
  const listed = [];
  let weight = null;
  for (let i = 0; i < LOADS; i += 1) {
    await page.goto(`${service.url}/inbox`, { waitUntil: 'commit' });
    await page.waitForFunction(() => document.querySelectorAll('#conversations li').length >= 50, null, { polling: 'raf' });
    const listedAt = await page.evaluate(() => performance.now());
    const m = await page.evaluate(async () => {
      const fcp = await new Promise((ok) => {
        new PerformanceObserver((l) => {
          const e = l.getEntries().find((p) => p.name === 'first-contentful-paint');
          if (e) ok(e);
        }).observe({ type: 'paint', buffered: true });
        setTimeout(() => ok(null), 2000);
      });
      const resources = performance.getEntriesByType('resource');
      const nav = performance.getEntriesByType('navigation')[0];
      const page = nav.decodedBodySize + resources
        .filter((r) => /\/inbox\//.test(new URL(r.name).pathname))
        .reduce((n, r) => n + r.decodedBodySize, 0);
      const data = resources
        .filter((r) => /\/api\/v1\//.test(new URL(r.name).pathname))
        .reduce((n, r) => n + r.decodedBodySize, 0);
      return { fcp: fcp ? fcp.startTime : NaN, page, data };
    });
    paints.push(m.fcp);
    listed.push(listedAt);
    weight = m;
  }
  console.log(`first contentful paint over ${LOADS} loads: median ${ms(pct(paints, 50))}, max ${ms(Math.max(...paints))} (target <= 300 ms)`);
  console.log(`first 50 of ${CONVERSATIONS} conversations on screen: median ${ms(pct(listed, 50))}, max ${ms(Math.max(...listed))}`);
  console.log(`page weight (html, script, style; uncompressed): ${(weight.page / 1024).toFixed(1)} KB (target <= 150 KB); its API data: ${(weight.data / 1024).toFixed(1)} KB`);

  // A delivery to visible: the page notes when each bubble is added.
  await page.click(`#conversations button[data-id="${open}"]`);
  await page.waitForSelector('#thread li.msg');
  await page.waitForSelector('#conn[data-state="live"]');
  await page.evaluate(() => {
    window.seen = {};
    new MutationObserver((records) => {
      const now = Date.now();
      for (const r of records) for (const n of r.addedNodes) if (n.dataset?.id) window.seen[n.dataset.id] = now;
    }).observe(document.getElementById('thread'), { childList: true });
  });
  const sent = {};
  for (let i = 0; i < DELIVERIES; i += 1) {
    const at = Date.now();
    const id = await service.deliver({ conversation: open, post: POST_A, text: `پیام زنده ${i}` });
    sent[id] = at;
    await new Promise((r) => setTimeout(r, 20));
  }
  await page.waitForFunction((n) => Object.keys(window.seen).length >= n, DELIVERIES, { timeout: 30_000 });
  const seen = await page.evaluate(() => window.seen);
  const lat = Object.entries(sent).map(([id, at]) => seen[id] - at);
  console.log(`delivery to visible over ${DELIVERIES} deliveries: p50 ${ms(pct(lat, 50))}, p95 ${ms(pct(lat, 95))}, max ${ms(Math.max(...lat))} (target p95 <= 1000 ms)`);
} finally {
  await context?.close();
  await service.stop();
}
