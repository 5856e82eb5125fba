// Shared plumbing for the interop tests: where the server is, unique topic
// names, publishing with Node's own fetch, and bounded waits.
//
// The server is started by scripts/interop.sh, which passes its address in
// PUSHWIRE_URL (for example http://127.0.0.1:34567). Nothing here starts or
// stops a process.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';

export const BASE = (() => {
  const url = process.env.PUSHWIRE_URL;
  if (!url) {
    throw new Error(
      'PUSHWIRE_URL is not set: run scripts/interop.sh, or start ' +
        '`pushwire --debug-endpoints` and export PUSHWIRE_URL=http://127.0.0.1:PORT',
    );
  }
  return url.replace(/\/+$/, '');
})();

export const WS_BASE = BASE.replace(/^http/, 'ws');

/** How long any single wait may take before the test fails. */
export const WAIT_MS = 8000;

/** A topic name no other test (or earlier run) has used. */
export function topic(label) {
  return `interop.${label}.${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** POST a message; returns the id the server assigned. */
export async function publish(t, data, event) {
  const q = event ? `?event=${encodeURIComponent(event)}` : '';
  const res = await fetch(`${BASE}/topics/${t}${q}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: data,
  });
  const text = await res.text();
  assert.equal(res.status, 200, `publish to ${t}: ${res.status} ${text}`);
  const body = JSON.parse(text);
  assert.equal(typeof body.id, 'string', `publish answer has an id: ${text}`);
  assert.match(body.id, /^[^-\s]+-[1-9][0-9]*$/, 'id is <epoch>-<seq>');
  return body.id;
}

/**
 * POST a message the way a one-shot client does: Node's http module with
 * no agent sends `Connection: close`, so the server closes the connection
 * right after answering. Returns the id.
 */
export function publishClosing(t, data) {
  return deadline(
    new Promise((resolve, reject) => {
      const req = http.request(`${BASE}/topics/${t}`, { method: 'POST', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`publish: ${res.statusCode} ${body}`));
          resolve(JSON.parse(body).id);
        });
      });
      req.on('error', reject);
      req.end(data);
    }),
    'a publish over a closing connection',
  );
}

/**
 * Rejects after `ms` with a message naming what was awaited (`what` may be
 * a function, called at the time-out, to report the state reached).
 */
export function deadline(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const name = typeof what === 'function' ? what() : what;
      reject(new Error(`timed out after ${ms} ms waiting for ${name}`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves on the first `name` event of an EventEmitter or EventTarget. */
export function once(target, name, what = name) {
  return deadline(
    new Promise((resolve) => {
      if (typeof target.once === 'function') {
        target.once(name, (...args) => resolve(args.length > 1 ? args : args[0]));
      } else {
        target.addEventListener(name, resolve, { once: true });
      }
    }),
    what,
  );
}

/**
 * Collects values pushed into it and lets a test wait until `n` have
 * arrived. `items` is the live array, so a test can also check that no
 * more arrived than expected.
 */
export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    this.items.push(item);
    this.waiters = this.waiters.filter(({ n, resolve }) => {
      if (this.items.length >= n) {
        resolve(this.items.slice(0, n));
        return false;
      }
      return true;
    });
  }

  /** Resolves with the first `n` items once they are all there. */
  take(n, what = `${n} item(s)`, ms = WAIT_MS) {
    if (this.items.length >= n) return Promise.resolve(this.items.slice(0, n));
    return deadline(
      new Promise((resolve) => this.waiters.push({ n, resolve })),
      () => `${what} (got ${this.items.length}: ${JSON.stringify(this.items).slice(0, 500)})`,
      ms,
    );
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
