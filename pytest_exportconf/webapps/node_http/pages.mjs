// The UI of the JavaScript system: one HTML page per system, the model's format chosen by ?format=.
// The form posts to the JSON API with fetch and shows the answer in #result (data-* carry the values).

const FORMATS = ["onnx", "savedmodel", "torchscript", "pickle", "joblib"];
const TITLES = { number_predictor: "Number predictor", sentiment: "Movie-review sentiment" };

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

const FORMS = {
  number_predictor: `
    <p>Three numbers of a sequence; the model predicts the next one.</p>
    <input id="n1" type="number" step="any" required> <input id="n2" type="number" step="any" required>
    <input id="n3" type="number" step="any" required>`,
  sentiment: `
    <p>A movie review; the model says whether it is positive.</p>
    <textarea id="review" rows="6" cols="60" required></textarea>`,
};

const SCRIPTS = {
  number_predictor: `
    const body = () => ({ numbers: ["n1", "n2", "n3"].map((id) => Number(document.getElementById(id).value)) });
    const show = (r, el) => { el.dataset.value = r.prediction; el.textContent = "Next number: " + r.prediction.toFixed(4); };`,
  sentiment: `
    const body = () => ({ review: document.getElementById("review").value });
    const show = (r, el) => { el.dataset.label = r.label; el.dataset.probability = r.probability;
      el.textContent = r.label + " (P(positive) = " + r.probability.toFixed(4) + ")"; };`,
};

// Any other system: a form built from its input (k numbers or a text), pre-filled with an example row.
export function genericPage(system, format, entry) {
  const spec = entry.input ?? {};
  const ex = entry.example;
  const form = spec.kind === "text"
    ? `<p>The model's text input.</p><textarea id="text" rows="6" cols="60" required>${esc(ex ?? "")}</textarea>`
    : `<p>The model's ${spec.count} input features (pre-filled with a golden row).</p>` +
      Array.from({ length: spec.count }, (_, i) => `<input id="x${i + 1}" type="number" step="any" required value="${esc(ex?.[i] ?? "")}">`).join(" ");
  const script = spec.kind === "text"
    ? `const body = () => ({ text: document.getElementById("text").value });`
    : `const body = () => ({ features: Array.from({ length: ${Number(spec.count)} }, (_, i) => Number(document.getElementById("x" + (i + 1)).value)) });`;
  const show = `const show = (r, el) => { el.dataset.value = r.score; el.textContent = "Score: " + r.score.toFixed(4); };`;
  return render(`${entry.title ?? system} — ${format} — node:http`, system, format, form, script + "\n" + show);
}

export function page(system, format) {
  return render(`${TITLES[system]} — ${format} — node:http`, system, format, FORMS[system], SCRIPTS[system]);
}

function render(title, system, format, form, script) {
  const options = FORMATS.map((f) => `<option${f === format ? " selected" : ""}>${f}</option>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:40em}#result{margin-top:1em;font-size:1.3em}#error{color:#b00}</style>
</head><body>
<h1>${esc(title)}</h1>
<form id="form" method="get">
  <label>Model format <select id="format" name="format" onchange="this.form.submit()">${options}</select></label>
</form>
<form id="predict">${form}
  <p><button id="submit" type="submit">Predict</button></p>
</form>
<div id="result"></div><div id="error"></div>
<script>
  ${script}
  document.getElementById("predict").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const el = document.getElementById("result"), err = document.getElementById("error");
    delete el.dataset.done; err.textContent = "";
    const res = await fetch(${JSON.stringify(`/api/${system}/${format}`)},
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body()) });
    const r = await res.json();
    if (res.ok) show(r, el); else err.textContent = r.error;
    el.dataset.done = res.ok ? "ok" : "error";
  });
</script>
</body></html>`;
}

export function index(systems) {
  const links = systems.flatMap((s) => FORMATS.map((f) => `<li><a href="/${s}?format=${f}">${TITLES[s]} (${f})</a></li>`));
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>exportconf systems — node:http</title></head>
<body><h1>exportconf systems — node:http</h1><ul>${links.join("")}</ul></body></html>`;
}
