// Search: query, top-k, metadata filter -> a grid of hits (rank, score, document, page, lazy thumbnail).
// The time from the API's answer to the results being painted is measured and shown (and kept in
// #results[data-paint-ms] for the browser test).
import { collectionPath, imageUrl, post } from "./api.js";
import { $, clear, formatScore, h, lazyImage, parseJsonObject } from "./dom.js";
import { openPage } from "./hitview.js";
import { report } from "./report.js";
import { on, state } from "./state.js";

let generation = 0;

const SNIPPET_LINES = 12;

// A text/code hit (`kind: "chunk"`): path, name and lines, then the chunk's text with its line numbers.
function snippet(hit) {
  const chunk = hit.chunk;
  if (!chunk || typeof chunk.text !== "string") return null;
  const [first, last] = Array.isArray(chunk.lines) ? chunk.lines : [null, null];
  const lines = chunk.text.replace(/\n$/, "").split("\n");
  const shown = lines.slice(0, SNIPPET_LINES);
  const where = (first === null ? chunk.path : `${chunk.path}:${first}–${last}`) + (chunk.part ? ` (part ${chunk.part})` : "");
  return h(
    "span",
    { class: "chunk" },
    h("span", { class: "chunk-path" }, where),
    chunk.name ? h("span", { class: "chunk-name" }, `${chunk.chunk_kind || ""} ${chunk.name}`.trim()) : null,
    h(
      "pre",
      { class: "snippet", "aria-label": `lines ${first ?? "?"} to ${last ?? "?"} of ${chunk.path}` },
      shown.map((line, i) =>
        h(
          "span",
          { class: "line" },
          first === null ? "" : h("span", { class: "ln", "aria-hidden": "true" }, `${first + i}`),
          line,
          "\n",
        ),
      ),
      lines.length > shown.length ? h("span", { class: "muted" }, `… ${lines.length - shown.length} more lines`) : null,
    ),
  );
}

function signalsOf(hit) {
  // which signals found the hit, e.g. "text #1 · visual #4 · maxsim #2"
  return Object.entries(hit.signals || {})
    .map(([name, s]) => `${name} #${s.rank}`)
    .join(" · ");
}

function facts(hit, rank) {
  return h(
    "span",
    { class: "hit-facts" },
    h("span", { class: "rank" }, `#${rank}`),
    h("span", { class: "score", title: `score ${hit.score}` }, formatScore(hit.score)),
  );
}

function chunkCard(hit, rank) {
  // text/code hits have no page image: the snippet is the result (no button, nothing to open)
  const signals = signalsOf(hit);
  return h(
    "li",
    { class: "hit chunk-hit", dataset: { rank } },
    h(
      "div",
      { class: "chunk-body" },
      facts(hit, rank),
      h("span", { class: "hit-doc" }, hit.document_id),
      snippet(hit),
      signals ? h("span", { class: "muted signals" }, signals) : null,
    ),
  );
}

function card(collection, query, hit, rank) {
  if (hit.kind === "chunk" && hit.chunk) return chunkCard(hit, rank);
  const img = h("img", { alt: `page ${hit.page} of ${hit.document_id}`, width: 160 });
  lazyImage(img, () => imageUrl(collection, hit.document_id, hit.page, "thumbnail"), $("#results"));
  const view = { collection, documentId: hit.document_id, page: hit.page, query, rank, score: hit.score };
  const open = () => openPage({ ...view, highlights: hit.highlights });
  const signals = signalsOf(hit);
  const words = Array.isArray(hit.highlights) ? hit.highlights.length : 0;
  return h(
    "li",
    { class: "hit" },
    h(
      "button",
      { type: "button", class: "hit-button", onclick: open, dataset: { rank } },
      img,
      facts(hit, rank),
      h("span", { class: "hit-doc" }, hit.document_id),
      h("span", { class: "muted" }, `page ${hit.page}`, words ? ` · ${words} matched word${words === 1 ? "" : "s"}` : ""),
      signals ? h("span", { class: "muted signals" }, signals) : null,
    ),
  );
}

// What the request asked for that did not apply (a filter key no document has, a signal that found nothing):
// the server answers them in `warnings`; shown above the results, never as an error.
function showWarnings(warnings) {
  const list = clear($("#search-warnings"));
  warnings.forEach((text) => list.append(h("li", {}, text)));
  list.hidden = warnings.length === 0;
}

async function search(event) {
  event.preventDefault();
  const c = state.collection;
  if (!c) return;
  const data = new FormData(event.currentTarget);
  // highlight: the boxes of the page's words matching the query (drawn in the hit view). mode: only when
  // chosen, so the server's default (JEV4_SEARCH_MODE) applies otherwise.
  const body = { query: String(data.get("query")), top_k: Number(data.get("top_k") || 10), highlight: true };
  const mode = String(data.get("mode") || "");
  if (mode) body.mode = mode;
  const mine = ++generation;
  const status = $("#search-status");
  try {
    const filter = parseJsonObject(String(data.get("filter") || ""), "Metadata filter");
    if (filter) body.filter = filter;
    status.textContent = "Searching…";
    const sent = performance.now();
    const answer = await post(`${collectionPath(c.name)}/search`, body);
    const received = performance.now();
    if (mine !== generation) return;
    const list = clear($("#results"));
    answer.results.forEach((hit, i) => list.append(card(c.name, body.query, hit, i + 1)));
    showWarnings(answer.warnings || []);
    requestAnimationFrame(() =>
      setTimeout(() => {
        const paint = performance.now() - received;
        list.dataset.paintMs = paint.toFixed(1);
        list.dataset.apiMs = (received - sent).toFixed(1);
        status.textContent =
          `${answer.results.length} results · API ${(received - sent).toFixed(0)} ms · ` +
          `painted ${paint.toFixed(0)} ms after the answer`;
      }),
    );
  } catch (err) {
    showWarnings([]);
    status.textContent = err.message;
    report(err);
  }
}

export function initSearch() {
  $("#search-form").addEventListener("submit", search);
  on("collection", () => {
    generation += 1;
    clear($("#results"));
    showWarnings([]);
    $("#search-status").textContent = "";
  });
}
