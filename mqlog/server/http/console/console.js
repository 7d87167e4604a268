// The mqlog console: one module, no dependencies, no build step (docs/console.md).
//
// Live data comes from two server-sent event streams, read with fetch so that
// the bearer token goes in a header (EventSource cannot send one):
// /console/events (a snapshot of topics and groups every second or so) and
// /console/tail/{topic}. Dead letters are browsed and redriven through the log
// API (/dead-letters/...). Every number shown is the server's; the page only
// formats them (exact values are in each cell's data-value).

const TOKEN_KEY = "mqlog.console.token";
const RETRY_MS = 2000;            // wait before reconnecting a stream that ended
const HISTORY_POINTS = 300;       // lag chart: the last 300 snapshots (~5 minutes)
const TAIL_ROWS_MAX = 200;        // live tail: rows kept on the page
const SHOWN_CHARS_MAX = 200;      // tail cells: characters shown (the rest in a tooltip)
const COLOURS = 8;                // chart lines: classes colour-0 .. colour-7 (console.css)

const $ = (selector) => document.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const state = {
  snapshot: null,
  expanded: new Set(),   // topics whose partitions are shown
  group: null,           // the group shown in #group-detail
  history: new Map(),    // group -> [{t, lags: Map("topic/partition" -> lag)}]
  dlq: null,             // the dead-letter topic shown
  dlqEnd: null,          // its summed end offsets when its letters were loaded
  letter: null,          // {partition, offset} shown in #letter-detail
  tailAbort: null,
};

// -- building elements -----------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  return build(document.createElement(tag), attributes, children);
}

function svg(tag, attributes = {}, ...children) {
  return build(document.createElementNS("http://www.w3.org/2000/svg", tag), attributes,
               children);
}

function build(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) element.append(child);
  }
  return element;
}

// -- formatting ------------------------------------------------------------------------

const missing = (value) => value === null || value === undefined;
const integer = (n) => (missing(n) ? "–" : n.toLocaleString("en-US"));

function perSecond(n) {
  if (missing(n)) return "–";
  return n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US");
}

function size(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function duration(ms) {
  if (missing(ms)) return "–";
  const seconds = ms / 1000;
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

const clock = (ms) => (missing(ms) ? "–" : new Date(ms).toLocaleTimeString("en-GB"));
const moment = (ms) => (missing(ms) ? "–" : new Date(ms).toISOString().replace("T", " "));

// A table cell with the exact value in data-value (what tests and tools read).
function cell(field, value, text = integer(value), attributes = {}) {
  return h("td", { "data-field": field, "data-value": missing(value) ? "" : value,
                   ...attributes }, text);
}

// Text of a record field as the server sent it (base64 for binary records).
function shown(text, encoding) {
  if (missing(text)) return "–";
  return encoding === "base64" ? `base64:${text}` : text;
}

function replaceRows(table, rows, empty, columns) {
  const body = $(`${table} tbody`);
  body.replaceChildren(...(rows.length ? rows
    : [h("tr", { class: "empty" }, h("td", { colspan: columns }, empty))]));
}

// -- requests and the token --------------------------------------------------------------

let tokenPrompt = null;

function askToken() {
  if (!tokenPrompt) {
    tokenPrompt = new Promise((resolve) => {
      const dialog = $("#token-dialog");
      $("#token-form").addEventListener("submit", () => {
        sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
        tokenPrompt = null;
        resolve();
      }, { once: true });
      dialog.showModal();
    });
  }
  return tokenPrompt;
}

// fetch with the token; a 401 asks for a (new) token and tries again.
async function request(path, options = {}) {
  for (;;) {
    const headers = { ...(options.headers || {}) };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    await askToken();
  }
}

async function failureOf(response) {
  const body = await response.json().catch(() => ({}));
  return new Error(body.error ? `${body.error.code}: ${body.error.message}`
                              : `${response.status} ${response.statusText}`);
}

async function api(path, options = {}) {
  const response = await request(path, options);
  if (!response.ok) throw await failureOf(response);
  return response.json();
}

// Read the server-sent events of `path`, calling handlers[event](data) for each,
// until the stream ends (resolves) or fails or `signal` aborts it (rejects).
async function follow(path, handlers, signal) {
  const response = await request(path, { signal, headers: { Accept: "text/event-stream" } });
  if (!response.ok) throw await failureOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length && handlers[event]) handlers[event](JSON.parse(data.join("\n")));
    }
  }
}

function setStatus(name, detail = "") {
  const status = $("#status");
  status.dataset.state = name;
  status.textContent = detail ? `${name}: ${detail}` : name;
}

function showFailure(message) {
  const failure = $("#failure");
  failure.hidden = !message;
  failure.textContent = message || "";
}

// -- snapshots -------------------------------------------------------------------------

async function watchSnapshots() {
  for (;;) {
    setStatus("connecting");
    try {
      await follow("/console/events", {
        snapshot: render,
        failure: (failure) => showFailure(`The server could not sample the log: ${failure.message}`),
      });
      setStatus("disconnected");
    } catch (error) {
      setStatus("disconnected", error.message);
    }
    await sleep(RETRY_MS);
  }
}

function render(snapshot) {
  state.snapshot = snapshot;
  setStatus("live", `updated ${clock(snapshot.now_ms)}`);
  $("#status").dataset.nowMs = snapshot.now_ms;
  showFailure("");
  remember(snapshot);
  renderTopics(snapshot.topics);
  renderGroups(snapshot.groups.filter((group) => group.kind !== "queue"));
  renderQueues(snapshot.groups.filter((group) => group.kind === "queue"));
  renderGroupDetail();
  renderTopicChoices(snapshot.topics);
  renderDeadLetterTopics(snapshot.topics);
}

function remember(snapshot) {
  const seen = new Set();
  for (const group of snapshot.groups) {
    seen.add(group.group);
    const points = state.history.get(group.group) || [];
    const lags = new Map(group.partitions.map((p) => [`${p.topic}/${p.partition}`, p.lag]));
    points.push({ t: snapshot.now_ms, lags });
    if (points.length > HISTORY_POINTS) points.splice(0, points.length - HISTORY_POINTS);
    state.history.set(group.group, points);
  }
  for (const name of state.history.keys()) if (!seen.has(name)) state.history.delete(name);
}

function renderTopics(topics) {
  const rows = [];
  for (const topic of topics) {
    const open = state.expanded.has(topic.name);
    const toggle = () => {
      if (open) state.expanded.delete(topic.name);
      else state.expanded.add(topic.name);
      renderTopics(state.snapshot.topics);
    };
    rows.push(h("tr", { class: "topic clickable", "data-topic": topic.name, onclick: toggle },
      h("td", {}, h("span", { class: "twisty" }, open ? "▾" : "▸"), " ", topic.name,
        topic.dead_letters ? h("span", { class: "badge" }, "dead letters") : null),
      cell("partitions", topic.partitions.length),
      cell("records", topic.records),
      cell("size_bytes", topic.size_bytes, size(topic.size_bytes),
           { title: `${integer(topic.size_bytes)} bytes` }),
      cell("segments", topic.segments),
      cell("in_per_s", topic.in_per_s, perSecond(topic.in_per_s)),
      cell("out_per_s", topic.out_per_s, perSecond(topic.out_per_s)),
      cell("oldest_record_age_ms", topic.oldest_record_age_ms,
           duration(topic.oldest_record_age_ms))));
    if (open) rows.push(h("tr", { class: "nested" }, h("td", { colspan: 8 }, partitionTable(topic))));
  }
  replaceRows("#topics-table", rows, "No topics yet.", 8);
}

function partitionTable(topic) {
  return h("table", { class: "partitions" },
    h("thead", {}, h("tr", {}, ["Partition", "Start", "End", "Records", "Size", "Segments"]
      .map((title) => h("th", {}, title)))),
    h("tbody", {}, topic.partitions.map((p) =>
      h("tr", { class: "partition", "data-topic": topic.name, "data-partition": p.partition },
        cell("partition", p.partition), cell("start_offset", p.start_offset),
        cell("end_offset", p.end_offset), cell("records", p.records),
        cell("size_bytes", p.size_bytes, size(p.size_bytes),
             { title: `${integer(p.size_bytes)} bytes` }),
        cell("segments", p.segments)))));
}

function selectGroup(name) {
  state.group = name;
  renderGroupDetail();
  $("#group-detail").scrollIntoView({ block: "nearest" });
}

function groupRow(group, cells) {
  return h("tr", { class: `group clickable${state.group === group.group ? " selected" : ""}`,
                   "data-group": group.group, onclick: () => selectGroup(group.group) },
    h("td", {}, group.group), cell("state", group.state, group.state),
    cell("members", group.members), ...cells);
}

function renderGroups(groups) {
  replaceRows("#groups-table", groups.map((group) => groupRow(group, [
    cell("lag", group.lag),
    cell("in_per_s", group.in_per_s, perSecond(group.in_per_s)),
    cell("out_per_s", group.out_per_s, perSecond(group.out_per_s)),
    cell("drain_s", group.drain_s, missing(group.drain_s) ? "–" : duration(group.drain_s * 1000)),
  ])), "No consumer groups.", 7);
}

const total = (group, field) => group.partitions.reduce((sum, p) => sum + (p[field] || 0), 0);

function renderQueues(groups) {
  replaceRows("#queues-table", groups.map((group) => groupRow(group, [
    cell("ready", total(group, "ready")),
    cell("in_flight", total(group, "in_flight")),
    cell("delayed", total(group, "delayed")),
    cell("dead_lettered", total(group, "dead_lettered")),
    cell("lag", group.lag),
    cell("out_per_s", group.out_per_s, perSecond(group.out_per_s)),
  ])), "No queue groups.", 9);
}

function renderGroupDetail() {
  const section = $("#group-detail");
  const group = state.snapshot && state.group
    ? state.snapshot.groups.find((g) => g.group === state.group) : null;
  section.hidden = !state.group;
  if (!state.group) return;
  $("#group-name").textContent = group ? `${group.group} (${group.kind}, ${group.state})`
                                       : `${state.group} (gone)`;
  section.dataset.group = state.group;
  const partitions = group ? group.partitions : [];
  const keys = partitions.map((p) => `${p.topic}/${p.partition}`);
  drawChart($("#lag-chart"), $("#lag-legend"), state.history.get(state.group) || [], keys);
  replaceRows("#group-partitions", partitions.map((p) =>
    h("tr", { "data-topic": p.topic, "data-partition": p.partition },
      h("td", {}, p.topic), cell("partition", p.partition),
      cell("committed_offset", p.committed_offset), cell("end_offset", p.end_offset),
      cell("lag", p.lag), cell("ready", p.ready), cell("in_flight", p.in_flight),
      cell("delayed", p.delayed), cell("dead_lettered", p.dead_lettered),
      cell("member_id", p.member_id, p.member_id || "–"))), "No partitions.", 10);
}

// -- the lag chart ----------------------------------------------------------------------

// The smallest of 1, 2, 5 times a power of ten that is >= n (n >= 1).
function niceCeiling(n) {
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((step) => step * power).find((value) => value >= n);
}

// Lag per partition over the snapshots seen: one line per partition (key).
function drawChart(chart, legend, points, keys) {
  const width = 720;
  const height = 220;
  const left = 56;
  const right = 12;
  const top = 10;
  const bottom = 22;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const t0 = points.length ? points[0].t : 0;
  const t1 = points.length ? Math.max(points[points.length - 1].t, t0 + 1) : 1;
  let highest = 1;
  for (const point of points) for (const lag of point.lags.values()) highest = Math.max(highest, lag);
  const max = niceCeiling(highest);
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (lag) => top + (1 - lag / max) * (height - top - bottom);
  const parts = [];
  for (const lag of [0, max / 2, max]) {
    parts.push(svg("line", { x1: left, x2: width - right, y1: y(lag), y2: y(lag), class: "grid" }),
               svg("text", { x: left - 6, y: y(lag) + 4, "text-anchor": "end" }, integer(lag)));
  }
  parts.push(svg("text", { x: left, y: height - 4 }, clock(points.length ? t0 : null)),
             svg("text", { x: width - right, y: height - 4, "text-anchor": "end" }, "now"));
  keys.forEach((key, index) => {
    const colour = `colour-${index % COLOURS}`;
    const line = points.filter((point) => point.lags.has(key))
      .map((point) => `${x(point.t).toFixed(1)},${y(point.lags.get(key)).toFixed(1)}`);
    parts.push(svg("polyline", { points: line.join(" "), class: `series ${colour}`,
                                 "data-series": key }));
    if (line.length) {
      const [cx, cy] = line[line.length - 1].split(",");
      parts.push(svg("circle", { cx, cy, r: 3, class: `point ${colour}` }));
    }
  });
  chart.replaceChildren(...parts);
  const latest = points.length ? points[points.length - 1].lags : new Map();
  legend.replaceChildren(...keys.map((key, index) =>
    h("span", { class: "legend" },
      h("span", { class: `swatch colour-${index % COLOURS}` }),
      `${key}: ${integer(latest.get(key))}`)));
}

// -- dead letters ------------------------------------------------------------------------

// Make `select` offer `names` (after `placeholder`, unless null), keeping the choice.
function setOptions(select, names, placeholder) {
  const wanted = placeholder === null ? names : [placeholder, ...names];
  const current = [...select.options].map((option) => option.value);
  if (wanted.join("\n") === current.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(...wanted.map((name) =>
    h("option", { value: name }, name || "(choose a topic)")));
  if (wanted.includes(chosen)) select.value = chosen;
}

const endOf = (topic) => topic.partitions.reduce((sum, p) => sum + p.end_offset, 0);

// The dead-letter topics: the one shown stays (its letters reloaded when it grows),
// else the first is shown.
function renderDeadLetterTopics(topics) {
  const holders = topics.filter((topic) => topic.dead_letters);
  setOptions($("#dlq-topic"), holders.map((topic) => topic.name), null);
  const shown = holders.find((topic) => topic.name === state.dlq);
  if (shown) {
    if (endOf(shown) !== state.dlqEnd) loadLetters();
    return;
  }
  const first = holders.length ? holders[0].name : null;
  if (first !== state.dlq) {
    if (first) $("#dlq-topic").value = first;
    chooseDeadLetterTopic(first);
  }
}

function chooseDeadLetterTopic(name) {
  state.dlq = name;
  state.letter = null;
  $("#letter-detail").hidden = true;
  loadLetters();
}

async function loadLetters() {
  const dlq = state.dlq;
  if (!dlq) {
    replaceRows("#letters-table", [], "No dead-letter topics.", 6);
    return;
  }
  const topic = state.snapshot && state.snapshot.topics.find((t) => t.name === dlq);
  state.dlqEnd = topic ? endOf(topic) : null;
  try {
    const { dead_letters: letters } = await api(`/dead-letters/${encodeURIComponent(dlq)}`);
    if (state.dlq !== dlq) return;
    replaceRows("#letters-table", letters.map((letter) => h("tr", {
      class: `letter clickable${isShown(letter) ? " selected" : ""}`,
      "data-partition": letter.partition, "data-offset": letter.offset,
      onclick: () => showLetter(letter.partition, letter.offset),
    }, cell("partition", letter.partition), cell("offset", letter.offset),
       cell("state", letter.state, letter.state), cell("reason", letter.reason, letter.reason || "–"),
       h("td", { "data-field": "origin" },
         `${letter.origin.topic}/${letter.origin.partition}@${integer(letter.origin.offset)}`),
       cell("timestamp", letter.timestamp, moment(letter.timestamp)))),
    "No dead letters.", 6);
  } catch (error) {
    replaceRows("#letters-table", [], `Could not list the dead letters: ${error.message}`, 6);
  }
}

const isShown = (letter) => state.letter !== null && state.letter.partition === letter.partition
  && state.letter.offset === letter.offset;

async function showLetter(partition, offset) {
  state.letter = { partition, offset };
  const dlq = state.dlq;
  const detail = $("#letter-detail");
  $("#redrive-result").textContent = "";
  try {
    const letter = await api(
      `/dead-letters/${encodeURIComponent(dlq)}/${partition}/${offset}`);
    if (state.dlq !== dlq || !isShown(letter)) return;
    $("#letter-name").textContent = `${dlq} ${partition}@${offset}`;
    $("#letter-state").textContent = letter.state;
    detail.dataset.state = letter.state;
    detail.dataset.partition = partition;
    detail.dataset.offset = offset;
    $("#letter-headers tbody").replaceChildren(...Object.entries(letter.headers).map(
      ([name, value]) => h("tr", { "data-header": name },
        h("th", {}, name), h("td", {}, shown(value, letter.encoding)))));
    $("#letter-key").textContent = shown(letter.key, letter.encoding);
    $("#letter-body").textContent = shown(letter.value, letter.encoding);
    $("#redrive").disabled = letter.state !== "pending";
    detail.hidden = false;
  } catch (error) {
    $("#redrive-result").textContent = `Could not read the letter: ${error.message}`;
  }
}

async function redriveShown() {
  const { partition, offset } = state.letter;
  const dlq = state.dlq;
  $("#redrive").disabled = true;
  try {
    const result = await api(`/dead-letters/${encodeURIComponent(dlq)}/redrive`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ offsets: [offset], partition }),
    });
    $("#redrive-result").textContent = `redriven: ${result.redriven}`;
  } catch (error) {
    $("#redrive-result").textContent = `Redrive failed: ${error.message}`;
  }
  await loadLetters();
  const note = $("#redrive-result").textContent;
  await showLetter(partition, offset);
  $("#redrive-result").textContent = note;
}

// -- the live tail -----------------------------------------------------------------------

function renderTopicChoices(topics) {
  setOptions($("#tail-topic"), topics.map((topic) => topic.name), "");
}

function startTail(topic) {
  if (state.tailAbort) state.tailAbort.abort();
  replaceRows("#tail-table", [], topic ? "Waiting for records…" : "Choose a topic.", 5);
  $("#tail-status").textContent = "";
  if (!topic) return;
  const controller = new AbortController();
  state.tailAbort = controller;
  (async () => {
    while (!controller.signal.aborted) {
      let first = true;
      try {
        await follow(`/console/tail/${encodeURIComponent(topic)}`, {
          records: (batch) => {
            if (first) $("#tail-table tbody").replaceChildren();
            first = false;
            addTailRecords(batch);
            $("#tail-status").textContent = "following";
          },
          failure: (failure) => { $("#tail-status").textContent = failure.message; },
        }, controller.signal);
      } catch (error) {
        if (controller.signal.aborted) return;
        $("#tail-status").textContent = error.message;
      }
      await sleep(RETRY_MS);
    }
  })();
}

function addTailRecords(batch) {
  const body = $("#tail-table tbody");
  const shorten = (text) => (text.length > SHOWN_CHARS_MAX
    ? `${text.slice(0, SHOWN_CHARS_MAX)}…` : text);
  const rows = batch.records.map((record) => {
    const key = shown(record.key, record.encoding);
    const value = shown(record.value, record.encoding) + (record.truncated ? " (cut)" : "");
    return h("tr", { class: "record", "data-partition": record.partition,
                     "data-offset": record.offset },
      cell("timestamp", record.timestamp, moment(record.timestamp)),
      cell("partition", record.partition), cell("offset", record.offset),
      h("td", { "data-field": "key", title: key }, shorten(key)),
      h("td", { "data-field": "value", title: value }, shorten(value)));
  }).reverse();
  if (batch.skipped) {
    rows.unshift(h("tr", { class: "skipped" },
      h("td", { colspan: 5 }, `… ${integer(batch.skipped)} records skipped`)));
  }
  body.prepend(...rows);
  while (body.rows.length > TAIL_ROWS_MAX) body.deleteRow(-1);
}

// -- start -------------------------------------------------------------------------------

// Nothing works without the token: Escape does not close its dialog.
$("#token-dialog").addEventListener("cancel", (event) => event.preventDefault());
$("#dlq-topic").addEventListener("change", (event) => chooseDeadLetterTopic(event.target.value));
$("#redrive").addEventListener("click", redriveShown);
$("#tail-topic").addEventListener("change", (event) => startTail(event.target.value));
replaceRows("#letters-table", [], "No dead-letter topics.", 6);
replaceRows("#tail-table", [], "Choose a topic.", 5);
watchSnapshots();
