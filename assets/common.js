// pushwire demo pages: small helpers shared by every page.
//
// Everything lives on one global object, `pw`, so each page's own script can
// stay about its transport. Nothing here talks to the server except
// `pw.publish`, the one POST every demo uses to send a message.

'use strict';

const pw = (() => {
  // Topic and event names, as the server accepts them (DESIGN: 1-128 bytes of
  // [A-Za-z0-9._:-] for topics, 1-64 for event names). Checking in the page
  // gives a friendly message instead of a 400.
  const TOPIC_RE = /^[A-Za-z0-9._:-]{1,128}$/;
  const EVENT_RE = /^[A-Za-z0-9._:-]{1,64}$/;

  const $ = (selector, root = document) => root.querySelector(selector);

  // el('li', {class: 'x'}, 'text', childNode) -> a new element.
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === 'class') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // A query-string parameter, so a demo can be linked to a given topic:
  // /demo/chat?room=team
  function param(name, fallback) {
    const value = new URLSearchParams(location.search).get(name);
    return value === null || value === '' ? fallback : value;
  }

  // Marks a topic input red while its value is not a valid topic name.
  function watchTopic(input) {
    const check = () => input.classList.toggle('invalid', !TOPIC_RE.test(input.value));
    input.addEventListener('input', check);
    check();
    return () => TOPIC_RE.test(input.value);
  }

  const encoder = new TextEncoder();
  // Bytes of a string once encoded as UTF-8, as it travels on the wire.
  const byteLength = (text) => encoder.encode(text).length;

  const clock = (date = new Date()) =>
    date.toTimeString().slice(0, 8) + '.' + String(date.getMilliseconds()).padStart(3, '0');

  function median(values) {
    if (values.length === 0) return null;
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  function formatBytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1024 / 1024).toFixed(2) + ' MiB';
  }

  // Short random suffix, to give each visitor a fresh topic by default.
  const randomId = () => Math.random().toString(36).slice(2, 7);

  // ---- the wire panel -------------------------------------------------
  //
  // Every page has a "show wire" checkbox in its top bar and a
  // <section class="wire"> at the bottom. Entries are always recorded (the
  // last MAX_WIRE of them), so switching the panel on shows what just
  // happened, not only what happens next.

  const MAX_WIRE = 400;
  let wireList = null;

  function setupWire() {
    const box = $('#show-wire');
    const section = $('section.wire');
    if (!box || !section) return;
    const apply = () => {
      document.body.classList.toggle('show-wire', box.checked);
      const list = $('ol', section);
      if (box.checked) list.scrollTop = list.scrollHeight;   // newest in view
    };
    box.checked = param('wire', '') === '1' || localStorage.getItem('pushwire.wire') === '1';
    box.addEventListener('change', () => {
      localStorage.setItem('pushwire.wire', box.checked ? '1' : '0');
      apply();
    });
    apply();
    const clear = $('button.clear-wire', section);
    if (clear) clear.addEventListener('click', () => $('ol', section).replaceChildren());
  }

  // kind: 'in' (server -> page), 'out' (page -> server) or 'info'.
  function wire(kind, label, text = '') {
    wireList = wireList || document.querySelector('section.wire ol');
    if (!wireList) return;
    const arrow = { in: '←', out: '→', info: '·' }[kind];
    const item = el('li', { class: kind },
      el('span', { class: 't' }, clock()),
      el('span', { class: 'dir' }, arrow),
      label ? el('span', { class: 'label' }, label) : null,
      text);
    const atBottom = wireList.scrollTop + wireList.clientHeight >= wireList.scrollHeight - 4;
    wireList.append(item);
    while (wireList.childElementCount > MAX_WIRE) wireList.firstElementChild.remove();
    if (atBottom) wireList.scrollTop = wireList.scrollHeight;
  }

  // ---- publishing -----------------------------------------------------

  // POST /topics/{topic}[?event=NAME] with a text body; resolves to the new
  // message's id. The server answers {"id":"<epoch>-<seq>"}.
  async function publish(topic, body, event) {
    let url = '/topics/' + topic;
    if (event && event !== 'message') url += '?event=' + event;
    wire('out', 'POST ' + url, body);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
      body,
    });
    const text = await res.text();
    wire('in', res.status + ' ' + res.statusText, text);
    if (!res.ok) throw new Error('publish failed: ' + res.status + ' ' + text);
    return JSON.parse(text).id;
  }

  // Appends an item to a feed list and keeps the list to `max` items,
  // dropping the oldest. Newest at the bottom, scrolled into view.
  function appendFeed(list, item, max = 300) {
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.append(item);
    while (list.childElementCount > max) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  document.addEventListener('DOMContentLoaded', setupWire);

  return {
    TOPIC_RE, EVENT_RE, $, el, param, watchTopic, byteLength, clock, median,
    formatBytes, randomId, wire, publish, appendFeed,
  };
})();
