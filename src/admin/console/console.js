// pullgate admin console: a browser ES module, served as is (no build step) by the admin listener at
// /console/console.js. It holds no data: it asks for the admin token (or a JWT), keeps it in this
// tab's sessionStorage, and sends it as `Authorization: Bearer` to /admin/v1 on this origin only,
// never in a URL. Every value from the API is written with textContent, never parsed as HTML.

const TOKEN_KEY = "pullgate.admin.token";
const MODES = ["off", "audit", "enforce"];
const REFRESH_MS = 3000;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

let token = sessionStorage.getItem(TOKEN_KEY) ?? "";
let timer;
let refreshing = false;

class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** A JSON call to the admin API with the bearer token. */
async function api(path, { method = "GET", body } = {}) {
  const asked = token;
  const headers = { authorization: `Bearer ${token}`, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
    redirect: "error",
  });
  let json;
  try {
    json = await res.json();
  } catch {
    json = undefined;
  }
  // Signed out (or in as someone else) while this was under way: its answer is not for this page.
  if (token !== asked) throw new ApiError(0, "SIGNED_OUT", "signed out");
  if (!res.ok) {
    const e = json?.errors?.[0];
    if (res.status === 401) signOut("Signed out: the admin API refused the token.");
    throw new ApiError(res.status, e?.code ?? String(res.status), e?.message ?? res.statusText, e?.detail);
  }
  return json;
}

/** An element with text and children (strings become text nodes: nothing is parsed as HTML). */
function el(tag, opts = {}, ...children) {
  const node = document.createElement(tag);
  if (opts.className) node.className = opts.className;
  if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
  if (opts.title) node.title = String(opts.title);
  for (const [k, v] of Object.entries(opts.data ?? {})) node.dataset[k] = String(v);
  for (const child of children) if (child !== undefined && child !== null) node.append(child);
  return node;
}

const list = (items) =>
  items.length === 0 ? el("span", { className: "hint", text: "—" }) : el("ul", {}, ...items);
const li = (...children) => el("li", {}, ...children);
const badge = (value) => el("span", { className: `badge ${value}`, text: value });
const shortDigest = (d) =>
  typeof d === "string" && d.startsWith("sha256:") ? `${d.slice(0, 19)}…` : (d ?? "");

function setStatus(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function errorText(err) {
  if (err instanceof ApiError) {
    const problems = Array.isArray(err.detail?.problems) ? `: ${err.detail.problems.join("; ")}` : "";
    return `${err.code}: ${err.message}${problems}`;
  }
  return String(err?.message ?? err);
}

// ---- sign in / out ----

function showSignedIn(signedIn) {
  $("login").hidden = signedIn;
  $("app").hidden = !signedIn;
  $("logout").hidden = !signedIn;
  $("who").textContent = signedIn ? "signed in" : "";
}

function signOut(message = "") {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  timer = undefined;
  showSignedIn(false);
  // Nothing the last session read stays in the page.
  for (const table of ["projects", "decisions"]) $(table).querySelector("tbody").replaceChildren();
  for (const id of ["why-result", "project-names"]) $(id).replaceChildren();
  for (const id of ["status", "decisions-count"]) $(id).textContent = "";
  /** @type {HTMLInputElement} */ ($("why-reference")).value = "";
  $("login-error").textContent = message;
}

async function signIn(candidate) {
  token = candidate;
  try {
    await api("/admin/v1/projects");
  } catch (err) {
    const message = err instanceof ApiError && err.status === 401 ? "Invalid token." : errorText(err);
    signOut(message);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login-error").textContent = "";
  showSignedIn(true);
  await Promise.all([loadProjects(), loadDecisions()]);
  scheduleRefresh();
}

// ---- projects ----

function signersOf(p) {
  const keys = (p.keys ?? []).map((k) =>
    li(
      el("strong", { text: k.name }),
      " key ",
      el("code", {
        text: k.fingerprint ? `${String(k.fingerprint).slice(0, 16)}…` : "",
        title: k.fingerprint,
      }),
      k.kms ? el("span", { className: "hint", text: ` ${k.kms}` }) : null,
      k.unavailable ? el("span", { className: "error", text: ` unavailable: ${k.unavailable}` }) : null,
    ),
  );
  const keyless = (p.keyless ?? []).map((k) =>
    li(
      el("strong", { text: k.name }),
      " keyless ",
      el("span", {
        className: "mono",
        text: `${k.issuer ?? k.issuerRegExp ?? ""} · ${k.subject ?? k.subjectRegExp ?? ""}`,
      }),
    ),
  );
  return list([...keys, ...keyless]);
}

function requirementsOf(p) {
  const items = [];
  if (typeof p.threshold === "number" && p.threshold > 1) items.push(li(`threshold: ${p.threshold} signers`));
  if (Array.isArray(p.requiredSigners) && p.requiredSigners.length > 0)
    items.push(li(`required signers: ${p.requiredSigners.join(", ")}`));
  for (const a of p.attestations ?? []) {
    items.push(
      li(
        el("strong", { text: a.name }),
        " attestation ",
        el("code", { text: a.predicateType }),
        Array.isArray(a.signers) ? ` by ${a.signers.join(", ")}` : "",
        a.condition ? el("div", { className: "mono hint", text: `if ${a.condition}` }) : null,
      ),
    );
  }
  const annotations = Object.entries(p.annotations ?? {});
  if (annotations.length > 0)
    items.push(li(`annotations: ${annotations.map(([k, v]) => `${k}=${v}`).join(", ")}`));
  return list(items);
}

function modeCell(p, isDefaults) {
  if (isDefaults) return el("span", { className: `mode-${p.mode}`, text: p.mode });
  const select = el("select", { data: { project: p.project } });
  select.setAttribute("aria-label", `mode of ${p.project}`);
  for (const mode of MODES) {
    const option = el("option", { text: mode });
    option.value = mode;
    select.append(option);
  }
  select.value = p.mode;
  select.addEventListener("change", () => changeMode(p.project, p.mode, select));
  return select;
}

async function loadProjects() {
  const body = await api("/admin/v1/projects");
  const rows = [];
  const names = $("project-names");
  names.replaceChildren();
  for (const [p, isDefaults] of [...body.projects.map((p) => [p, false]), [body.defaults, true]]) {
    const name = isDefaults ? el("em", { text: "defaults" }) : el("strong", { text: p.project });
    rows.push(
      el(
        "tr",
        { data: { project: isDefaults ? "" : p.project } },
        el("td", {}, name),
        el("td", {}, modeCell(p, isDefaults)),
        el("td", {}, signersOf(p)),
        el("td", {}, requirementsOf(p)),
        el("td", { className: "hint", text: p.source }),
      ),
    );
    if (!isDefaults) {
      const option = el("option");
      option.value = p.project;
      names.append(option);
    }
  }
  $("projects")
    .querySelector("tbody")
    .replaceChildren(...rows);
}

/** Asks in a modal dialog; resolves true when confirmed. */
function confirmDialog(text) {
  const dialog = /** @type {HTMLDialogElement} */ ($("confirm"));
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const done = (ok) => {
      $("confirm-ok").removeEventListener("click", onOk);
      $("confirm-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      dialog.close();
      resolve(ok);
    };
    const onOk = () => done(true);
    const onCancel = (e) => {
      e?.preventDefault?.();
      done(false);
    };
    $("confirm-ok").addEventListener("click", onOk);
    $("confirm-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
  });
}

async function changeMode(project, from, select) {
  const to = select.value;
  const ok = await confirmDialog(
    `Switch project "${project}" from ${from} to ${to}? ` +
      (to === "enforce"
        ? "Unsigned images will be refused."
        : to === "audit"
          ? "Unsigned images will be served (and recorded as would-deny)."
          : "Nothing will be checked."),
  );
  if (!ok) {
    select.value = from;
    return;
  }
  try {
    const after = await api(`/admin/v1/projects/${encodeURIComponent(project)}/policy`, {
      method: "PUT",
      body: { mode: to },
    });
    setStatus(`${project}: mode ${from} → ${after.mode}`);
  } catch (err) {
    select.value = from;
    setStatus(`${project}: the mode was not changed (${errorText(err)})`, true);
  }
  await loadProjects().catch((err) => setStatus(errorText(err), true));
}

// ---- decisions ----

async function loadDecisions() {
  const q = new URLSearchParams({ limit: "200" });
  const project = /** @type {HTMLInputElement} */ ($("filter-project")).value.trim();
  const outcome = /** @type {HTMLSelectElement} */ ($("filter-outcome")).value;
  const repository = /** @type {HTMLInputElement} */ ($("filter-repository")).value.trim();
  if (project) q.set("project", project);
  if (outcome) q.set("outcome", outcome);
  if (repository) q.set("repository", repository);
  const body = await api(`/admin/v1/decisions?${q}`);
  const rows = body.decisions.map((d) => {
    const denied = d.outcome === "deny" || d.outcome === "would-deny";
    const why = denied ? el("button", { text: "Why?", title: "Explain with a dry run" }) : null;
    why?.setAttribute("type", "button");
    why?.addEventListener("click", () => explain(`${d.repository}@${d.digest}`, d.upstream));
    return el(
      "tr",
      { data: { outcome: d.outcome, repository: d.repository, seq: d.seq } },
      el("td", { className: "hint", text: new Date(d.at).toLocaleTimeString(), title: d.at }),
      el("td", {}, badge(d.outcome)),
      el("td", { text: d.project }),
      el("td", { className: "mono", text: d.repository }),
      el("td", { className: "mono", text: d.reference }),
      el("td", { className: "mono", text: shortDigest(d.digest), title: d.digest }),
      el("td", { text: d.mode }),
      el("td", { className: "mono reason", text: d.reason ?? (d.via ? `via ${d.via}` : "") }),
      el("td", { className: "detail", text: d.detail ?? (d.key ? `key ${d.key}` : "") }),
      el("td", {}, why),
    );
  });
  $("decisions")
    .querySelector("tbody")
    .replaceChildren(...rows);
  $("decisions-empty").hidden = rows.length > 0;
  $("decisions-count").textContent =
    `${body.remembered} remembered by this replica (the latest ${body.capacity})`;
}

function scheduleRefresh() {
  clearInterval(timer);
  timer = undefined;
  if (!(/** @type {HTMLInputElement} */ ($("auto-refresh")).checked) || !token) return;
  timer = setInterval(async () => {
    if (refreshing || document.hidden) return;
    refreshing = true;
    try {
      await loadDecisions();
    } catch (err) {
      setStatus(`decisions: ${errorText(err)}`, true);
    } finally {
      refreshing = false;
    }
  }, REFRESH_MS);
}

// ---- why was this denied? ----

function facts(pairs) {
  const dl = el("dl", { className: "facts" });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    const text = typeof v === "object" ? JSON.stringify(v) : v;
    dl.append(el("dt", { text: k }), el("dd", { className: "mono", text }));
  }
  return dl;
}

function signatureRow(s) {
  const who = s.key ?? [s.subject, s.issuer].filter(Boolean).join(" · ");
  const checks = (s.requirements ?? []).map((r) =>
    li(`${r.attestation}: ${r.result}${r.detail ? ` (${r.detail})` : ""}`),
  );
  return el(
    "tr",
    {},
    el("td", { className: "mono", text: s.format }),
    el("td", {}, badge(s.result)),
    el("td", { className: "mono", text: who }),
    el("td", { className: "mono", text: s.predicateType ?? "" }),
    el(
      "td",
      { className: "detail", text: s.detail ?? "" },
      checks.length > 0 ? el("ul", {}, ...checks) : null,
    ),
  );
}

function signatureTable(title, items) {
  if (!Array.isArray(items) || items.length === 0)
    return el("p", { className: "hint", text: `${title}: none found` });
  const head = el(
    "tr",
    {},
    ...["Format", "Result", "Signer", "Predicate type", "Detail"].map((h) => el("th", { text: h })),
  );
  return el(
    "div",
    {},
    el("h3", { text: title }),
    el("table", {}, el("thead", {}, head), el("tbody", {}, ...items.map(signatureRow))),
  );
}

async function explain(reference, upstream) {
  /** @type {HTMLInputElement} */ ($("why-reference")).value = reference;
  /** @type {HTMLInputElement} */ ($("why-upstream")).value = upstream ?? "";
  const out = $("why-result");
  out.replaceChildren(el("p", { className: "hint", text: `Looking up ${reference}…` }));
  $("why-section").scrollIntoView({ block: "start" });
  try {
    const r = await api("/admin/v1/verify", {
      method: "POST",
      body: upstream ? { reference, upstream } : { reference },
    });
    out.replaceChildren(
      el("p", {}, badge(r.outcome), " ", el("strong", { className: "mono", text: r.reason ?? r.via ?? "" })),
      // The words a client pulling it now would read in the 403.
      ...(r.message ? [el("p", { className: "why-message", text: r.message })] : []),
      facts([
        ["detail", r.detail],
        ["unavailable", r.unavailable],
        ["project", r.project],
        ["mode", r.mode],
        ["upstream", r.upstream],
        ["repository", r.repository],
        ["digest", r.digest],
        ["key", r.key],
        ["signers", Array.isArray(r.signers) ? r.signers.join(", ") : undefined],
      ]),
      signatureTable("Signatures considered", r.signatures),
      signatureTable("Attestations considered", r.attestations),
    );
    out.dataset.outcome = r.outcome;
  } catch (err) {
    out.replaceChildren(el("p", { className: "error", text: errorText(err) }));
    out.dataset.outcome = "error";
  }
}

// ---- wiring ----

function start() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = /** @type {HTMLInputElement} */ ($("token"));
    const value = input.value.trim();
    input.value = "";
    if (value) signIn(value);
  });
  $("logout").addEventListener("click", () => signOut());
  $("projects-refresh").addEventListener("click", () =>
    loadProjects().catch((err) => setStatus(errorText(err), true)),
  );
  $("filter-form").addEventListener("submit", (e) => {
    e.preventDefault();
    loadDecisions().catch((err) => setStatus(`decisions: ${errorText(err)}`, true));
  });
  $("auto-refresh").addEventListener("change", scheduleRefresh);
  $("why-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const reference = /** @type {HTMLInputElement} */ ($("why-reference")).value.trim();
    const upstream = /** @type {HTMLInputElement} */ ($("why-upstream")).value.trim();
    if (reference) explain(reference, upstream || undefined);
  });
  if (token) signIn(token);
  else showSignedIn(false);
}

start();
