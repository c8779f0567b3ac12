// The customer web page: sign in with a token, Initialize the demo, list, upload and
// delete scripts, tail one script's invocations live, and see one script's versions and
// deployments (and roll it back). Plain JavaScript, no build step.
//
// Everything the server sends is inserted with textContent (never innerHTML), and the
// token lives only in sessionStorage: never in the URL, never in localStorage, never logged.
"use strict";

const TOKEN_KEY = "dispatcher.customer-token";
const TOKEN_HEADER = "X-Customer-Token";

const $ = (selector) => document.querySelector(selector);

// ---------------------------------------------------------------------------------------
// Talking to the API

/** An API failure carrying the envelope's error code and human message. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls the API as the customer whose `token` is given (by default the signed-in one; null
 * sends none) and returns the envelope's `data` with the HTTP status, or throws an ApiError
 * with the envelope's message. Answers that are not the envelope (a proxy's error page, a
 * dropped connection) become an ApiError too, so callers handle one kind of failure.
 */
async function api(method, path, { body, token = storedToken() } = {}) {
  const headers = token === null ? {} : { [TOKEN_HEADER]: token };
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached. Is it running?");
  }
  return { status: response.status, data: await envelopeData(response) };
}

/** The `data` of an envelope response, or throws its error as an ApiError. */
async function envelopeData(response) {
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    // Not JSON: handled below from the status alone.
  }
  if (envelope && envelope.ok === true) return envelope.data;
  if (envelope && envelope.ok === false && envelope.error) {
    throw new ApiError(response.status, envelope.error.code, envelope.error.message);
  }
  const reason = response.statusText ? ` ${response.statusText}` : "";
  throw new ApiError(response.status, "http_" + response.status,
    `The server answered ${response.status}${reason}.`);
}

// ---------------------------------------------------------------------------------------
// Small DOM helpers

/** Creates an element with a class and text (inserted as text, never parsed as HTML). */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function showMessage(node, text) {
  node.textContent = text;
  node.hidden = false;
}

function hideMessage(node) {
  node.textContent = "";
  node.hidden = true;
}

// Short titles shown before the server's message, for the codes a user can act on.
const ERROR_TITLES = {
  invalid_wasm: "Not a valid component.",
  invalid_name: "Invalid name.",
  bad_request: "Bad request.",
  too_large: "Too large.",
  name_taken: "Name taken.",
  unauthorized: "Not signed in.",
  forbidden: "Not allowed.",
};

/** Shows an error: the server's message, after a short title when the code has one. */
function showError(node, error) {
  if (error instanceof ApiError) {
    const title = ERROR_TITLES[error.code];
    node.replaceChildren();
    if (title) node.append(el("strong", null, title), " ");
    node.append(error.message);
    node.hidden = false;
  } else {
    showMessage(node, "Something went wrong: " + error.message);
  }
}

function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit += 1;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A `<time>` showing an RFC 3339 timestamp in the reader's local time. */
function timeElement(iso, withDate) {
  const node = el("time");
  node.dateTime = iso;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    node.textContent = iso;
  } else {
    node.textContent = withDate ? date.toLocaleString() : date.toLocaleTimeString();
    node.title = iso;
  }
  return node;
}

// ---------------------------------------------------------------------------------------
// Signing in and out

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Checks a token by listing its scripts; keeps it only when the server accepts it. */
async function signIn(candidate) {
  const errorNode = $("#sign-in-error");
  hideMessage(errorNode);
  candidate = candidate.trim();
  let scripts;
  try {
    ({ data: scripts } = await api("GET", "/scripts", { token: candidate }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showMessage(errorNode, "That token was not accepted. Check it and try again.");
    } else {
      showError(errorNode, error);
    }
    return;
  }
  // Signing in as another customer (a demo button while signed in) starts afresh.
  stopTail();
  $("#tail-section").hidden = true;
  closeVersions();
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("#token").value = "";
  render();
  renderScripts(scripts);
}

function signOut(reason) {
  stopTail();
  sessionStorage.removeItem(TOKEN_KEY);
  $("#scripts tbody").replaceChildren();
  $("#tail-events").replaceChildren();
  $("#tail-section").hidden = true;
  closeVersions();
  hideMessage($("#upload-status"));
  hideMessage($("#upload-error"));
  $("#upload-form").reset();
  render();
  if (reason) showMessage($("#sign-in-error"), reason);
}

/** Shows the sections for the current state: signed in or out. */
function render() {
  const signedIn = storedToken() !== null;
  $("#session").hidden = !signedIn;
  $("#signed-out").hidden = signedIn;
  $("#scripts-section").hidden = !signedIn;
  $("#upload-section").hidden = !signedIn;
  if (signedIn) hideMessage($("#sign-in-error"));
}

/** Any request answered 401 after sign-in: the token was rotated or its customer removed. */
function handleAuthFailure(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut("Your token is no longer accepted. Sign in again.");
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Initialize (the demo)

async function initialize() {
  const button = $("#initialize");
  const result = $("#initialize-result");
  const errorNode = $("#initialize-error");
  hideMessage(errorNode);
  result.replaceChildren();
  button.disabled = true;
  try {
    const { data } = await api("POST", "/ui/initialize", { token: null });
    renderDemo(data);
  } catch (error) {
    showError(errorNode, error);
  } finally {
    button.disabled = false;
  }
}

function renderDemo({ customers, script }) {
  const result = $("#initialize-result");
  const link = el("a", null, `/dispatch/${script}/`);
  link.href = `/dispatch/${encodeURIComponent(script)}/`;
  link.target = "_blank";
  link.rel = "noopener";
  if (customers.length === 0) {
    const note = el("p", null,
      "The demo already exists; its tokens were shown when it was created. Its script is at ");
    note.append(link, ".");
    result.append(note);
    return;
  }
  const intro = el("p", null, customers.length === 1
    ? "Created the demo customer, owning the script "
    : `Created ${customers.length} demo customers, each owning the script `);
  intro.append(el("code", null, script), " (", link, "). Tokens are shown ",
    el("strong", null, "only once"), ": keep them now.");
  result.append(intro);

  const list = el("ul", "demo-customers");
  for (const customer of customers) {
    const item = el("li");
    item.dataset.customerId = customer.id;
    item.append(
      el("span", "demo-customer-name", customer.name),
      el("code", "demo-token", customer.token),
    );
    const use = el("button", "secondary", `Sign in as ${customer.name}`);
    use.type = "button";
    use.addEventListener("click", () => signIn(customer.token));
    item.append(use);
    list.append(item);
  }
  result.append(list);
}

// ---------------------------------------------------------------------------------------
// The script list

async function refreshScripts() {
  const errorNode = $("#scripts-error");
  try {
    const { data } = await api("GET", "/scripts");
    hideMessage(errorNode);
    renderScripts(data);
  } catch (error) {
    if (!handleAuthFailure(error)) showError(errorNode, error);
  }
}

function renderScripts(scripts) {
  const body = $("#scripts tbody");
  body.replaceChildren(...scripts.map(scriptRow));
  $("#scripts-empty").hidden = scripts.length > 0;
  const owner = scripts.length > 0 ? scripts[0].customer_id : null;
  $("#session-label").textContent = owner ? `Signed in as customer ${owner}` : "Signed in";
}

function scriptRow(script) {
  const row = el("tr");
  row.dataset.script = script.name;

  const nameCell = el("td", "name");
  const link = el("a", "open", script.name);
  link.href = `/dispatch/${encodeURIComponent(script.name)}/`;
  link.target = "_blank";
  link.rel = "noopener";
  link.title = "Open in a new tab";
  nameCell.append(link);

  // Every script carries its owner's `customer_id:<id>` tag; show only the chosen ones.
  const tagsCell = el("td", "tags");
  const ownerTag = `customer_id:${script.customer_id}`;
  for (const tag of script.tags.filter((t) => t !== ownerTag)) {
    tagsCell.append(el("span", "tag", tag), " ");
  }

  const sizeCell = el("td", "size num", humanSize(script.size));
  sizeCell.title = `${script.size} bytes, sha256 ${script.sha256}`;

  const updatedCell = el("td", "updated");
  updatedCell.append(timeElement(script.updated_at, true));

  const actions = el("td", "actions");
  const tail = el("button", "tail secondary", "Tail");
  tail.type = "button";
  tail.setAttribute("aria-label", `Tail ${script.name}`);
  tail.addEventListener("click", () => startTail(script.name));
  const versions = el("button", "versions secondary", "Versions");
  versions.type = "button";
  versions.setAttribute("aria-label", `Versions of ${script.name}`);
  versions.addEventListener("click", () => openVersions(script.name));
  const remove = el("button", "delete danger", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${script.name}`);
  remove.addEventListener("click", () => deleteScript(script.name));
  actions.append(tail, versions, remove);

  row.append(nameCell, tagsCell, sizeCell, updatedCell, actions);
  return row;
}

async function deleteScript(name) {
  if (!confirm(`Delete the script "${name}"? Its URL stops answering at once.`)) return;
  const errorNode = $("#scripts-error");
  try {
    await api("DELETE", `/script/${encodeURIComponent(name)}`);
    hideMessage(errorNode);
    if (tailing && tailing.name === name) stopTail();
    if (versionsShown === name) closeVersions();
  } catch (error) {
    if (handleAuthFailure(error)) return;
    showError(errorNode, error);
  }
  await refreshScripts();
}

// ---------------------------------------------------------------------------------------
// Versions and deployments of one script
//
// Every upload keeps an immutable version; a deployment splits the traffic between one or
// two versions by percentage, and the newest deployment is the live one. A rollback
// deploys one kept version at 100%: by default the first version of the previous
// deployment, or the one named by `version_id`.

/** The name of the script whose versions are shown, or null. */
let versionsShown = null;
/** Counts the panel's loads, so that only the latest one is shown (see loadVersions). */
let versionsLoads = 0;

async function openVersions(name) {
  versionsShown = name;
  $("#versions-name").textContent = name;
  $("#versions-rollback").setAttribute("aria-label", `Roll back ${name}`);
  $("#versions-close").setAttribute("aria-label", `Close the versions of ${name}`);
  clearVersions();
  $("#versions-section").hidden = false;
  $("#versions-section").scrollIntoView({ behavior: "smooth", block: "start" });
  await loadVersions();
}

function closeVersions() {
  versionsShown = null;
  versionsLoads += 1; // a load under way is not shown
  $("#versions-section").hidden = true;
  clearVersions();
}

function clearVersions() {
  $("#versions-rows").replaceChildren();
  $("#deployments-rows").replaceChildren();
  $("#versions-status").textContent = "";
  hideMessage($("#versions-error"));
}

/** Fetches the shown script's versions and deployments and shows them. */
async function loadVersions() {
  const name = versionsShown;
  if (name === null) return;
  // A later load (the panel reopened, another script opened) or closing the panel makes
  // this one stale: its answers may be older than the later one's, so they are dropped.
  const load = ++versionsLoads;
  const base = `/script/${encodeURIComponent(name)}`;
  try {
    const [{ data: versions }, { data: deployments }] = await Promise.all([
      api("GET", `${base}/versions?per_page=100`),
      api("GET", `${base}/deployments?per_page=20`),
    ]);
    if (load !== versionsLoads) return;
    renderVersions(versions, deployments.items[0]);
    renderDeployments(deployments);
  } catch (error) {
    if (load !== versionsLoads || handleAuthFailure(error)) return;
    showError($("#versions-error"), error);
  }
}

/** "Versions", or "Versions (newest 100 of 130)" when the page does not hold them all. */
function countedHeading(label, page) {
  return page.total > page.items.length
    ? `${label} (newest ${page.items.length} of ${page.total})` : label;
}

/** Each version's percentage in `deployment` (none: no version is live), by version id. */
function liveShares(deployment) {
  const shares = deployment ? deployment.versions : [];
  return new Map(shares.map((share) => [share.version_id, share.percentage]));
}

/** A deployment's split, e.g. `a1b2c3d4e5f6 90% · 0f0e0d0c0b0a 10%`. */
function formatSplit(deployment) {
  return deployment.versions
    .map((share) => `${share.version_id} ${share.percentage}%`)
    .join(" · ");
}

function renderVersions(versions, live) {
  $("#versions-list-heading").textContent = countedHeading("Versions", versions);
  const shares = liveShares(live);
  $("#versions-rows").replaceChildren(
    ...versions.items.map((version) => versionRow(version, shares.get(version.id))));
}

/** A version's row; `percentage` is its share of the live deployment (undefined: none). */
function versionRow(version, percentage) {
  const row = el("tr", "version");
  row.dataset.versionId = version.id;
  row.dataset.number = version.number;
  if (percentage !== undefined) row.classList.add("live");

  const created = el("td", "created");
  created.append(timeElement(version.created_at, true));
  const tag = el("td", "version-tag", version.tag ? null : "—");
  if (version.tag) tag.append(el("span", "tag", version.tag));
  const actions = el("td", "actions");
  if (percentage !== 100) actions.append(deployButton(version));

  row.append(
    idCell(version.id),
    el("td", "number num", version.number),
    created,
    el("td", "message", version.message || "—"),
    tag,
    el("td", "share num", percentage === undefined ? "—" : `${percentage}%`),
    actions,
  );
  return row;
}

/** "Deploy 100%": a rollback to this version. */
function deployButton(version) {
  const button = el("button", "deploy secondary", "Deploy 100%");
  button.type = "button";
  button.setAttribute("aria-label",
    `Deploy version ${version.number} (${version.id}) of ${versionsShown} at 100%`);
  button.addEventListener("click", () => rollBack({ version_id: version.id }));
  return button;
}

function renderDeployments(deployments) {
  $("#deployments-heading").textContent = countedHeading("Deployments", deployments);
  $("#deployments-rows").replaceChildren(
    ...deployments.items.map((deployment, index) => deploymentRow(deployment, index === 0)));
}

function deploymentRow(deployment, isLive) {
  const row = el("tr", "deployment");
  row.dataset.deploymentId = deployment.id;
  const id = idCell(deployment.id);
  if (isLive) {
    row.classList.add("live");
    id.append(" ", el("span", "live-badge", "live"));
  }
  const created = el("td", "created");
  created.append(timeElement(deployment.created_at, true));
  row.append(id, created, el("td", "source", deployment.source),
    el("td", "split", formatSplit(deployment)));
  return row;
}

function idCell(id) {
  const cell = el("td", "id");
  cell.append(el("code", null, id));
  return cell;
}

/**
 * Rolls the shown script back with `body`: `{}` (the previous deployment's version) or
 * `{ version_id }`; then shows the panel and the script list afresh. A rollback with
 * nothing to roll back to is refused (400) with the server's reason, shown in the panel.
 */
async function rollBack(body) {
  const name = versionsShown;
  if (name === null) return;
  const status = $("#versions-status");
  const errorNode = $("#versions-error");
  status.textContent = "";
  hideMessage(errorNode);
  setVersionActionsDisabled(true);
  try {
    const { data: deployment } = await api("POST",
      `/script/${encodeURIComponent(name)}/rollback`, { body: JSON.stringify(body) });
    status.textContent = `Deployment ${deployment.id} is live: ${formatSplit(deployment)}.`;
  } catch (error) {
    if (handleAuthFailure(error)) return;
    showError(errorNode, error);
  } finally {
    setVersionActionsDisabled(false);
  }
  await Promise.all([loadVersions(), refreshScripts()]);
}

/** Disables the panel's Roll back and Deploy buttons while a rollback is under way. */
function setVersionActionsDisabled(disabled) {
  for (const button of document.querySelectorAll("#versions-rollback, #versions-rows button")) {
    button.disabled = disabled;
  }
}

// ---------------------------------------------------------------------------------------
// Uploading

/** A valid script name (`^[a-z0-9][a-z0-9-]{0,62}$`) derived from a file name. */
function nameFromFile(fileName) {
  return fileName
    .replace(/\.wasm$/i, "")
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);
}

async function upload(event) {
  event.preventDefault();
  const status = $("#upload-status");
  const errorNode = $("#upload-error");
  hideMessage(status);
  hideMessage(errorNode);

  const file = $("#upload-file").files[0];
  const name = $("#upload-name").value.trim();
  const tags = $("#upload-tags").value.split(",").map((t) => t.trim()).filter(Boolean);

  // The Workers for Platforms upload shape: a `metadata` JSON part naming the module
  // part (`main_module`), and the module part itself under that name.
  const form = new FormData();
  form.append("metadata", JSON.stringify({ main_module: file.name, tags }));
  form.append(file.name, file, file.name);

  const button = $("#upload-submit");
  button.disabled = true;
  try {
    const { status: code, data } = await api("PUT", `/script/${encodeURIComponent(name)}`,
      { body: form });
    showMessage(status, `Uploaded ${data.name} (${code === 201 ? "created" : "replaced"}).`);
    $("#upload-form").reset();
    // A new version of the script whose versions are shown belongs in its panel too.
    if (versionsShown === data.name) loadVersions();
    await refreshScripts();
  } catch (error) {
    if (!handleAuthFailure(error)) showError(errorNode, error);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------
// Wiring

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("#token").value);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#initialize").addEventListener("click", initialize);
  $("#refresh").addEventListener("click", refreshScripts);
  $("#upload-form").addEventListener("submit", upload);
  $("#upload-file").addEventListener("change", () => {
    const file = $("#upload-file").files[0];
    const nameInput = $("#upload-name");
    if (file && !nameInput.value) nameInput.value = nameFromFile(file.name);
  });
  $("#tail-stop").addEventListener("click", stopTail);
  $("#versions-rollback").addEventListener("click", () => rollBack({}));
  $("#versions-close").addEventListener("click", closeVersions);

  render();
  if (storedToken() !== null) refreshScripts();
});
