// Shared by the browser tests: launching Chromium, talking to the server
// from Node (publishing, dropping subscribers), screenshots.
//
// The server under test is at $PUSHWIRE_URL (scripts/browser-tests.sh starts
// one with --debug-endpoints and sets it).

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BASE = (process.env.PUSHWIRE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const screenshotDir = path.join(repoRoot, 'target', 'screenshots');

// One fresh browser profile per test file, so connection pools, caches and
// localStorage never leak from one test into another.
export async function launch() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushwire-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  context.setDefaultTimeout(10_000);
  const pageErrors = [];
  context.on('page', (page) => watch(page, pageErrors));
  for (const page of context.pages()) watch(page, pageErrors);
  let spare = context.pages()[0] || null;
  return {
    context,
    pageErrors,
    // A new tab; the first call reuses the blank tab the profile opened with.
    async newPage() {
      const page = spare || await context.newPage();
      spare = null;
      return page;
    },
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

function watch(page, errors) {
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push('console: ' + msg.text());
  });
}

// A topic no other test (or earlier run against the same server) uses.
export function uniqueTopic(prefix) {
  return prefix + '-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 6);
}

export async function publish(topic, body, event) {
  const url = BASE + '/topics/' + topic + (event ? '?event=' + event : '');
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url} -> ${res.status} ${text}`);
  return JSON.parse(text).id;
}

// Test-only: the server closes every SSE and WebSocket subscriber of the
// topic (enabled by --debug-endpoints), as a network failure would.
export async function dropSubscribers(topic) {
  const url = BASE + '/debug/drop?topic=' + topic;
  const res = await fetch(url, { method: 'POST' });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url} -> ${res.status} ${text}`);
  return text;
}

export async function screenshot(page, name) {
  fs.mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// "<epoch>-<seq>" -> seq, as a number.
export const seqOf = (id) => Number(id.split('-')[1]);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
