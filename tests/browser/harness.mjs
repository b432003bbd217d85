// Starting kenar-hook for the browser tests and benchmarks: a fresh SQLite database in a
// temporary folder, the inbox on, on 127.0.0.1 at a free port; stopped by its pid.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const BIN = process.env.KENAR_HOOK_BIN || join(ROOT, 'target/debug/kenar-hook');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const KEY = 'divar-identification-key-for-browser-tests-0001';
export const ADMIN = 'inbox-admin-token-for-browser-tests-000000001';
export const LIMITED = 'inbox-limited-token-for-browser-tests-00000001';
export const POST_A = 'QZx7Kp2A';
export const POST_B = 'QZx7Kp2B';

async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export class Service {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'kenar-inbox-'));
    this.child = null;
    this.log = [];
  }

  async start() {
    if (!this.port) this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const config = join(this.dir, 'kenar-hook.toml');
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    writeFileSync(config, `
[server]
listen = "127.0.0.1:${this.port}"
data_dir = "${join(this.dir, 'data')}"
[metrics]
enabled = false
[database]
url = "sqlite://${join(this.dir, 'data/kenar-hook.db')}"
[divar]
identification_keys = ["${KEY}"]
[api]
rate_limit_per_second = 1000
rate_limit_burst = 2000
[[api.clients]]
name = "operator"
token = "${ADMIN}"
scopes = ["messages", "events", "clicks", "forwarding", "pii"]
[[api.clients]]
name = "post-a-only"
token = "${LIMITED}"
scopes = ["messages"]
post_tokens = ["${POST_A}"]
[callback]
allowed_hosts = ["app.example-kenar.ir"]
fallback_url = "https://app.example-kenar.ir/start/{post_token}"
[forward]
allow_private_http = true
# Nothing listens on port 9 of 127.0.0.1: every push fails, as a receiver that is down.
[[forward.endpoints]]
name = "app-backend"
url = "http://127.0.0.1:9/hooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[inbox]
enabled = true
`);
    this.child = spawn(BIN, ['--config', config, 'serve'], {
      cwd: this.dir,
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(this.child);
    const keep = (chunk) => { this.log.push(String(chunk)); if (this.log.length > 200) this.log.shift(); };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`kenar-hook exited: ${this.log.join('')}`);
      try {
        const r = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`kenar-hook did not answer /readyz: ${this.log.join('')}`);
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  // A delivery to the webhook (or to `path`), which must be answered 200.
  async post(body, path = '/webhooks/divar') {
    const r = await fetch(`${this.url}${path}`, {
      signal: AbortSignal.timeout(10_000),
      method: 'POST',
      headers: { authorization: KEY, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (r.status !== 200) throw new Error(`delivery answered ${r.status}: ${await r.text()}`);
  }

  // A payload of tests/fixtures, as it is.
  async postFixture(name, path) {
    await this.post(JSON.parse(readFileSync(join(ROOT, 'tests/fixtures', name), 'utf8')), path);
  }

  // One NEW_MESSAGE event, stored before it is answered 200.
  async deliver({ post = POST_A, conversation, text, side = 'BUYER', type = 'TEXT', extra = {}, sentAt }) {
    const id = randomUUID();
    const body = {
      type: 'NEW_MESSAGE',
      new_message: {
        id,
        conversation: { id: conversation, type: 'POST', post_token: post },
        sender: { side, type: 'HUMAN' },
        type,
        sent_at: sentAt ?? Date.now() * 1000,
        ...(text === undefined ? {} : { text }),
        ...extra,
      },
    };
    await this.post(body);
    return id;
  }

  // One legacy CHAT_MESSAGE from the buyer to the post's owner; legacy messages carry
  // the post's title.
  async deliverLegacy({ post, conversation, text, title }) {
    const id = randomUUID();
    const now = Date.now() * 1000;
    const body = {
      type: 'CHAT_MESSAGE',
      timestamp: now,
      payload: {
        id, type: 'TEXT', sent_at: now, data: { text },
        sender: { id: conversation, is_supply: false },
        receiver: { id: 'owner-of-the-post-0001', is_supply: true },
        metadata: { category: 'light', post_token: post, title },
      },
    };
    await this.post(body);
    return id;
  }

  // Many deliveries, `width` at a time.
  async deliverAll(messages, width = 16) {
    const ids = new Array(messages.length);
    let next = 0;
    const worker = async () => {
      while (next < messages.length) {
        const i = next++;
        ids[i] = await this.deliver(messages[i]);
      }
    };
    await Promise.all(Array.from({ length: width }, worker));
    return ids;
  }
}

export async function launch(chromium) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'kenar-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    timeout: 60_000,
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
    viewport: { width: 1200, height: 800 },
    locale: 'fa-IR',
  });
}

export async function signIn(page, url, token) {
  await page.goto(`${url}/inbox`);
  await page.fill('#token', token);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
}

export const conversationId = () => randomUUID();

// A test that throws must not leave a service behind.
const running = new Set();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
}
export function track(child) { running.add(child); child.once('exit', () => running.delete(child)); }
