// The console's page and stylesheet: static text, no data in it (console.js fetches the data with the
// token it is given and writes every value with textContent). Kept as strings so that `tsc` alone
// ships them (the container build runs tsc -p tsconfig.build.json and copies dist/).

export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>pullgate console</title>
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/console.js"></script>
</head>
<body>
<header>
  <h1>pullgate <span class="sub">admin console</span></h1>
  <span id="who"></span>
  <button type="button" id="logout" hidden>Sign out</button>
</header>
<main>
  <section id="login">
    <h2>Sign in</h2>
    <form id="login-form" autocomplete="off">
      <label for="token">Admin token or JWT</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
      <button type="submit">Sign in</button>
      <p id="login-error" class="error" role="alert"></p>
    </form>
    <p class="hint">Sent as <code>Authorization: Bearer</code> to this pullgate only, and kept in this tab's
      session storage until you sign out or close the tab.</p>
  </section>

  <div id="app" hidden>
    <p id="status" role="status"></p>

    <section id="projects-section">
      <div class="section-head">
        <h2>Projects</h2>
        <button type="button" id="projects-refresh">Refresh</button>
      </div>
      <table id="projects">
        <thead><tr><th>Project</th><th>Mode</th><th>Signers</th><th>Requirements</th><th>Source</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>

    <section id="decisions-section">
      <div class="section-head">
        <h2>Latest decisions</h2>
        <span class="hint" id="decisions-count"></span>
      </div>
      <form id="filter-form" class="inline">
        <label>Project <input id="filter-project" list="project-names" spellcheck="false"></label>
        <datalist id="project-names"></datalist>
        <label>Outcome
          <select id="filter-outcome">
            <option value="">any</option>
            <option value="deny">deny</option>
            <option value="would-deny">would-deny</option>
            <option value="allow">allow</option>
            <option value="exempt">exempt</option>
            <option value="off">off</option>
          </select>
        </label>
        <label>Repository <input id="filter-repository" spellcheck="false"></label>
        <label class="check"><input type="checkbox" id="auto-refresh" checked> auto-refresh</label>
        <button type="submit">Apply</button>
      </form>
      <table id="decisions">
        <thead><tr><th>Time</th><th>Outcome</th><th>Project</th><th>Repository</th><th>Reference</th>
          <th>Digest</th><th>Mode</th><th>Reason</th><th>Detail</th><th></th></tr></thead>
        <tbody></tbody>
      </table>
      <p id="decisions-empty" class="hint" hidden>No decision matches.</p>
    </section>

    <section id="why-section">
      <h2>Why was this denied?</h2>
      <form id="why-form" class="inline">
        <label>Reference <input id="why-reference" size="60" spellcheck="false" required
          placeholder="proj/app:v1 or proj/app@sha256:..."></label>
        <label>Upstream <input id="why-upstream" spellcheck="false" placeholder="(routed by name)"></label>
        <button type="submit">Explain</button>
      </form>
      <p class="hint">A dry run: a fresh signature lookup under the current policy (the verdict cache is
        neither read nor written).</p>
      <div id="why-result"></div>
    </section>
  </div>

  <dialog id="confirm">
    <p id="confirm-text"></p>
    <div class="buttons">
      <button type="button" id="confirm-cancel">Cancel</button>
      <button type="button" id="confirm-ok" class="danger">Switch mode</button>
    </div>
  </dialog>
</main>
</body>
</html>
`;

export const CONSOLE_CSS = `:root {
  color-scheme: light;
  --fg: #1d2430; --muted: #5b6575; --line: #d9dee7; --bg: #f6f7f9; --card: #fff;
  --deny: #b42318; --deny-bg: #fde8e7; --warn: #8a5a00; --warn-bg: #fff3d6;
  --ok: #1e7b34; --ok-bg: #e4f5e8; --info-bg: #eef1f6; --accent: #2f5bd3;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem; background: #1d2430; color: #fff; }
header h1 { font-size: 1.15rem; margin: 0; flex: 1; }
header .sub { font-weight: 400; color: #aeb7c6; margin-left: .4rem; }
#who { color: #d5dbe5; font-size: .9rem; }
main { padding: 1rem 1.2rem 2rem; max-width: 1500px; margin: 0 auto; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem 1rem; margin-bottom: 1rem; }
h2 { font-size: 1.02rem; margin: .2rem 0 .7rem; }
.section-head { display: flex; align-items: baseline; gap: 1rem; }
.section-head h2 { flex: 1; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
td ul { margin: 0; padding-left: 1rem; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }
.detail { max-width: 36rem; white-space: pre-wrap; word-break: break-word; }
.hint { color: var(--muted); font-size: .85rem; }
.error { color: var(--deny); }
form.inline { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: end; margin-bottom: .7rem; }
label { display: inline-flex; flex-direction: column; gap: .15rem; font-size: .85rem; color: var(--muted); }
label.check { flex-direction: row; align-items: center; gap: .3rem; }
input, select, button { font: inherit; padding: .3rem .5rem; border: 1px solid var(--line); border-radius: 5px; background: #fff; color: var(--fg); }
button { cursor: pointer; background: var(--info-bg); }
button:hover { border-color: var(--accent); }
button.danger { background: var(--deny); color: #fff; border-color: var(--deny); }
#login { max-width: 32rem; margin: 3rem auto; }
#login-form { display: flex; flex-direction: column; gap: .5rem; }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: 999px; font-size: .8rem; font-weight: 600; background: var(--info-bg); }
.badge.deny, .badge.unavailable { background: var(--deny-bg); color: var(--deny); }
.badge.would-deny { background: var(--warn-bg); color: var(--warn); }
.badge.allow, .badge.verified { background: var(--ok-bg); color: var(--ok); }
.mode-enforce { color: var(--deny); }
#status { min-height: 1.3em; margin: 0 0 .6rem; }
#status.error { color: var(--deny); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .3rem 0 .8rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-word; }
dialog { border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; max-width: 30rem; }
dialog::backdrop { background: rgba(20, 25, 35, .45); }
dialog .buttons { display: flex; justify-content: end; gap: .6rem; }
[hidden] { display: none !important; }
`;
