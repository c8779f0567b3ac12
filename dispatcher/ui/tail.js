// The live tail view of the customer web page: follows one script's runs. Loaded
// before app.js, whose helpers ($, el, storedToken, TOKEN_HEADER, ...) it calls; it
// only defines functions, so the order of loading is all it needs.

// The tail view keeps at most this many rows; older ones are dropped.
const MAX_TAIL_ROWS = 200;

// `GET /script/{name}/tail` is a `text/event-stream`, but EventSource cannot send the
// token header, so the stream is read with fetch(): events are separated by a blank line,
// `data:` lines carry one JSON invocation event, lines starting with `:` are comments.

/** The tail being shown: `{ name, controller }`, or null. */
let tailing = null;

async function startTail(name) {
  stopTail();
  const controller = new AbortController();
  tailing = { name, controller };
  $("#tail-name").textContent = name;
  $("#tail-events").replaceChildren();
  $("#tail-empty").hidden = false;
  $("#tail-stop").disabled = false;
  $("#tail-section").hidden = false;
  setTailStatus("Connecting…");
  $("#tail-section").scrollIntoView({ behavior: "smooth", block: "start" });

  try {
    const response = await fetch(`/script/${encodeURIComponent(name)}/tail`, {
      headers: { [TOKEN_HEADER]: storedToken(), Accept: "text/event-stream" },
      signal: controller.signal,
      cache: "no-store",
    });
    if (!response.ok) await envelopeData(response); // throws the envelope's error
    await readEvents(response.body);
    if (tailing && tailing.controller === controller) {
      setTailStatus("The stream ended (the server closed it).");
      finishTail();
    }
  } catch (error) {
    if (error.name === "AbortError") return; // stopped on purpose
    if (tailing && tailing.controller === controller) {
      finishTail();
      if (handleAuthFailure(error)) return;
      setTailStatus(error instanceof ApiError ? error.message
        : "The connection was lost: " + error.message, true);
    }
  }
}

/** Reads server-sent events from `body` until it ends (or its fetch is aborted: throws). */
async function readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // Each complete event ends with a blank line; the last piece may be incomplete.
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop();
    for (const block of blocks) handleEventBlock(block);
  }
}

function handleEventBlock(block) {
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(":")) {
      // `: connected` opens the stream; empty comments keep it alive; any other comment
      // is the server's note to the reader (e.g. that it fell behind and missed events).
      const comment = line.slice(1).trim();
      if (comment === "connected") {
        setTailStatus("Connected: waiting for requests to this script.");
      } else if (comment) {
        setTailStatus(`Connected. The server says: ${comment}.`);
      }
    } else if (line.startsWith("data:")) {
      data.push(line.slice(5).replace(/^ /, ""));
    }
  }
  if (data.length === 0) return;
  try {
    addTailRow(JSON.parse(data.join("\n")));
  } catch {
    // A malformed event is skipped rather than ending the stream.
  }
}

function addTailRow(event) {
  const row = el("tr", "tail-event");
  const outcome = String(event.outcome ?? "unknown");
  const failed = outcome !== "ok";
  if (failed) row.classList.add("failed");
  row.dataset.path = event.path;
  row.dataset.status = event.status ?? "";
  row.dataset.outcome = outcome;

  const time = el("td", "time");
  time.append(timeElement(event.time, false));
  const logs = el("td", "logs");
  for (const line of event.logs ?? []) logs.append(el("div", "log-line", line));

  row.append(
    time,
    el("td", "method", event.method),
    el("td", "path", event.path),
    el("td", "status num", event.status ?? "—"),
    el("td", "outcome " + (failed ? "bad" : "good"), outcome.replaceAll("_", " ")),
    el("td", "cpu num", formatMs(event.cpu_ms)),
    el("td", "wall num", formatMs(event.wall_ms)),
    logs,
  );
  const events = $("#tail-events");
  events.prepend(row);
  while (events.rows.length > MAX_TAIL_ROWS) events.deleteRow(-1);
  $("#tail-empty").hidden = true;
}

function formatMs(ms) {
  if (typeof ms !== "number") return "—";
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;
}

function setTailStatus(text, isError = false) {
  const status = $("#tail-status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

/** The tail is over (ended, failed or stopped): the Stop button has nothing to stop. */
function finishTail() {
  tailing = null;
  $("#tail-stop").disabled = true;
}

function stopTail() {
  if (!tailing) return;
  tailing.controller.abort();
  finishTail();
  setTailStatus("Stopped.");
}

