// pushwire demo pages: small helpers shared by every page.
//
// Everything lives on one global object, `pw`, so each page's own script can
// stay about its transport: the EventSource, WebSocket and polling code is in
// the page, and what every page needs around it is here.
//
//   page chrome   the top bar and the wire panel (built from two empty
//                 elements in the page, see buildChrome)
//   the wire      pw.wire(): the raw exchange, shown under the page
//   URLs          pw.topicUrl(), pw.wsUrl()
//   talking       pw.publish() (the one POST every demo uses),
//                 pw.fetchBatch() (one poll or short-poll request)
//   showing       pw.showState(), pw.logLine(), pw.messageItem(),
//                 pw.appendFeed(), pw.showCounts(), pw.readyStateText(),
//                 pw.sseFields()
//   numbers       pw.formatBytes(), pw.formatMs(), pw.formatSeconds(),
//                 pw.median(), pw.backoff()
//
// Load it at the end of <body>, before the page's own script: it fills in
// the top bar and the wire panel at once, so the page's script finds them.

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

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---- the page's address -----------------------------------------------

  // A query-string parameter, so a demo can be linked to a given topic:
  // /demo/chat?room=team
  function param(name, fallback) {
    const value = new URLSearchParams(location.search).get(name);
    return value === null || value === '' ? fallback : value;
  }

  // Selects the option a query-string parameter names (?interval=250),
  // adding it to the <select> when it is not one of the choices offered.
  // `label` turns the value into the option's text.
  function selectFromParam(select, name, label = (value) => value) {
    const wanted = param(name, '');
    if (!wanted) return;
    if (![...select.options].some((o) => o.value === wanted)) {
      select.append(el('option', { value: wanted }, label(wanted)));
    }
    select.value = wanted;
  }

  // Marks a topic input red while its value is not a valid topic name.
  // Returns a function that tells whether it is valid now.
  function watchTopic(input) {
    const check = () => input.classList.toggle('invalid', !TOPIC_RE.test(input.value));
    input.addEventListener('input', check);
    check();
    return () => TOPIC_RE.test(input.value);
  }

  // ---- URLs of the HTTP interface -----------------------------------------

  // '/topics/{topic}[/{endpoint}][?name=value&…]'. Parameters that are null,
  // undefined or '' are left out: a poll without `after` means "no cursor",
  // which the server treats differently from any cursor (see DESIGN).
  // The topic goes in as given: the server matches it as sent.
  function topicUrl(topic, endpoint = '', params = {}) {
    let url = '/topics/' + topic + (endpoint ? '/' + endpoint : '');
    const query = Object.entries(params)
      .filter(([, value]) => value != null && value !== '')
      .map(([name, value]) => name + '=' + encodeURIComponent(value));
    if (query.length) url += '?' + query.join('&');
    return url;
  }

  // The same path as an absolute ws: (or wss:) URL, for new WebSocket().
  function wsUrl(path) {
    const url = new URL(path, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return url;
  }

  // ---- numbers ----------------------------------------------------------

  const encoder = new TextEncoder();
  // Bytes of a string once encoded as UTF-8, as it travels on the wire.
  const byteLength = (text) => encoder.encode(text).length;

  // 'hh:mm:ss.mmm', local time.
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

  // A latency: '42 ms'.
  const formatMs = (ms) => Math.round(ms) + ' ms';

  // A delay or interval given in ms: '0.5 s', '2 s', '1.5 s'.
  const formatSeconds = (ms) => Number((ms / 1000).toFixed(2)) + ' s';

  // How long to wait before retry number `attempt` (0, 1, 2, …): `firstMs`,
  // then doubling, capped at 30 s, so a server that is down is not hammered
  // by every open tab. The caller starts again from 0 once it gets through.
  const backoff = (attempt, firstMs) => Math.min(30000, firstMs * 2 ** attempt);

  // Short random suffix, to give each visitor a fresh topic by default.
  const randomId = () => Math.random().toString(36).slice(2, 7);

  // ---- the page chrome --------------------------------------------------
  //
  // Every page starts with an empty <header class="top"> and ends with an
  // empty <section class="wire" data-caption="what it shows">; they are
  // filled in here, so the links between the demos are written once.

  const DEMOS = [
    ['/demo/chat', 'Chat · WebSocket'],
    ['/demo/ticker', 'Ticker · SSE'],
    ['/demo/notifications', 'Notifications · long poll'],
    ['/demo/dashboard', 'Dashboard · short poll'],
    ['/demo/lab', 'Transport lab'],
    ['/demo/webrtc', 'WebRTC · signaling'],
    ['/demo/socketio', 'Socket.IO chat'],
  ];

  function buildChrome() {
    const header = $('header.top');
    if (header && !header.firstElementChild) {
      header.append(
        el('a', { class: 'brand', href: '/' }, 'push', el('span', {}, 'wire')),
        el('nav', {}, ...DEMOS.map(([href, text]) =>
          el('a', href === location.pathname ? { href, 'aria-current': 'page' } : { href }, text))),
        el('label', { class: 'wire-toggle' }, el('input', { type: 'checkbox', id: 'show-wire' }), ' show wire'));
    }
    const section = $('section.wire');
    if (section && !section.firstElementChild) {
      section.append(
        el('h2', {}, 'On the wire ', el('span', { class: 'muted' }, section.dataset.caption || ''),
          el('button', { class: 'secondary clear-wire', type: 'button' }, 'clear')),
        el('ol'));
    }
    // The curl examples name the server the page came from.
    for (const node of document.querySelectorAll('.host')) node.textContent = location.host;
  }

  // ---- the wire panel -----------------------------------------------------
  //
  // The "show wire" checkbox in the top bar shows the <section class="wire">
  // at the bottom. Entries are always recorded (the last MAX_WIRE of them),
  // so switching the panel on shows what just happened, not only what
  // happens next.

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
    appendFeed(wireList, item, MAX_WIRE);
  }

  // ---- talking to the server ---------------------------------------------

  // POST /topics/{topic}[?event=NAME] with a text body; resolves to the new
  // message's id. The server answers {"id":"<epoch>-<seq>"}. Both go on the
  // wire panel unless `quiet` (a page publishing many a second would drown
  // everything else there).
  async function publish(topic, body, event, { quiet = false } = {}) {
    const url = topicUrl(topic, '', { event: event === 'message' ? null : event });
    if (!quiet) wire('out', 'POST ' + url, body);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
      body,
    });
    const text = await res.text();
    if (!quiet) wire('in', res.status + ' ' + res.statusText, text);
    if (!res.ok) throw new Error('publish failed: ' + res.status + ' ' + text);
    return JSON.parse(text).id;
  }

  // One GET of a long poll (/poll) or a short poll (/messages): resolves to
  // the answer, {messages, last_id, timeout, gap}; rejects on a network
  // error or a status other than 200. Request and answer go on the wire
  // panel, after `label` when given (the lab names the transport).
  // `tally.bytes`, when a tally is given, grows by the size of every answer
  // body, failed ones included.
  async function fetchBatch(url, { signal, label = '', tally } = {}) {
    const prefix = label ? label + ' ' : '';
    wire('out', prefix + 'GET ' + url);
    const res = await fetch(url, { signal, cache: 'no-store' });
    const text = await res.text();
    if (tally) tally.bytes += byteLength(text);
    wire('in', prefix + res.status + ' ' + res.statusText, text);
    if (!res.ok) throw new Error('HTTP ' + res.status + ': ' + text);
    return JSON.parse(text);
  }

  // ---- showing things -----------------------------------------------------

  // A connection-state pill (<span class="state">): its class picks the
  // colour (open, connecting, reconnecting, waiting, closed, error; see
  // common.css), its text says what is going on.
  function showState(pill, state, text = state) {
    pill.className = 'state ' + state;
    pill.textContent = text;
  }

  // Appends an item to a feed list and keeps the list to `max` items,
  // dropping the oldest. Newest at the bottom, kept in view if the list was
  // scrolled to the bottom.
  function appendFeed(list, item, max = 300) {
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.append(item);
    while (list.childElementCount > max) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  // Appends a timestamped line to a page's log (a <ul class="feed log">);
  // cls 'gap' marks trouble.
  function logLine(list, text, cls = '', max = 100) {
    appendFeed(list, el('li', { class: cls }, el('span', { class: 'id' }, clock() + ' '), text), max);
  }

  // A feed item for one message: its id, its event name and its data, with
  // the id and event also in data-id / data-event for scripts and tests.
  // Either may be left out.
  function messageItem({ id, event, data }, cls = '') {
    const dataset = {};
    if (id) dataset.id = id;
    if (event) dataset.event = event;
    return el('li', { class: cls, dataset },
      id ? el('span', { class: 'id' }, id) : null, id ? ' ' : null,
      event ? el('span', { class: 'ev' }, event) : null, event ? ' ' : null,
      data);
  }

  // Writes each value into the element with that id: {requests: 3} sets
  // the text of #requests.
  function showCounts(values) {
    for (const [id, value] of Object.entries(values)) document.getElementById(id).textContent = value;
  }

  // An EventSource's readyState as a number and its name: '0 (CONNECTING)'.
  const readyStateText = (source) => source.readyState + ' (' + ['CONNECTING', 'OPEN', 'CLOSED'][source.readyState] + ')';

  // The lines of an SSE event as the server sends them (id, event when not
  // the default `message`, one data line per line of the message), without
  // the blank line that ends it. EventSource hides the raw stream; this
  // rebuilds it from what the page was given.
  function sseFields(event) {
    let text = 'id: ' + event.lastEventId + '\n';
    if (event.type !== 'message') text += 'event: ' + event.type + '\n';
    return text + event.data.split('\n').map((line) => 'data: ' + line).join('\n');
  }

  buildChrome();
  document.addEventListener('DOMContentLoaded', setupWire);

  return {
    TOPIC_RE, EVENT_RE, $, el, sleep, param, selectFromParam, watchTopic, topicUrl, wsUrl,
    byteLength, clock, median, formatBytes, formatMs, formatSeconds, backoff, randomId,
    wire, publish, fetchBatch, showState, appendFeed, logLine, messageItem, showCounts,
    readyStateText, sseFields,
  };
})();
