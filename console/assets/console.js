// idgraph console: keyboard shortcuts for the review queue. The pages work
// without it; it only moves focus and presses the buttons that are there.
(() => {
  "use strict";
  const items = () => Array.from(document.querySelectorAll("section.item"));
  let current = -1;
  const select = (i) => {
    const all = items();
    if (all.length === 0) return;
    current = Math.max(0, Math.min(i, all.length - 1));
    all.forEach((el, j) => el.classList.toggle("current", j === current));
    const heading = all[current].querySelector("h2");
    heading.tabIndex = -1;
    heading.focus();
  };
  document.addEventListener("click", (e) => {
    const t = e.target;
    if (t instanceof HTMLElement && t.classList.contains("skip-item")) {
      const all = items();
      select(all.indexOf(t.closest("section.item")) + 1);
    }
  });
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
    const all = items();
    switch (e.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "a": case "r": {
        if (current < 0 && all.length > 0) select(0);
        const btn = all[current] && all[current].querySelector(`button[data-key="${e.key}"]`);
        if (btn) btn.click();
        break;
      }
      case "s": select(current + 1); break;
      case "u": {
        const undo = document.querySelector('button[data-key="u"]');
        if (undo) undo.click();
        break;
      }
      case "?": {
        const help = document.querySelector("p.muted kbd");
        if (help) { const p = help.parentElement; p.tabIndex = -1; p.focus(); }
        break;
      }
      case "/": {
        const q = document.getElementById("q");
        if (q) { e.preventDefault(); q.focus(); }
        break;
      }
      default: return;
    }
  });
})();

// The definition editor (segments and computed traits): the definition is
// checked as it is typed (the API's validateDefinition for the form's
// data-kind, through the console), and the error is announced with its
// line and column. The form works without it.
(() => {
  "use strict";
  const area = document.getElementById("seg-definition");
  const status = document.getElementById("seg-status");
  if (!area || !status) return;
  const keyField = document.getElementById("seg-key");
  const form = document.getElementById("segment-editor");
  const key = () => (keyField ? keyField.value : form.elements.key.value);
  let timer = 0;
  let asked = 0;
  area.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const n = ++asked;
      const q = new URLSearchParams({ definition: area.value, key: key(), kind: form.dataset.kind || "SEGMENT" });
      try {
        const resp = await fetch("/console/segments/validate?" + q, { credentials: "same-origin" });
        const v = await resp.json();
        if (n !== asked) return; // a later check is on its way
        if (v.valid) status.textContent = `Valid (${v.type}).`;
        else if (v.errors && v.errors.length) {
          const e = v.errors[0];
          status.textContent = `Line ${e.line}, column ${e.column}: ${e.code}: ${e.message}` + (e.hint ? ` (${e.hint})` : "");
        } else status.textContent = v.error || "";
      } catch {
        // Offline or signed out: the Preview button still checks.
      }
    }, 300);
  });
})();
