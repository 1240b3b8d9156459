// Search: query, top-k, metadata filter -> a grid of hits (rank, score, document, page, lazy thumbnail).
// The time from the API's answer to the results being painted is measured and shown (and kept in
// #results[data-paint-ms] for the browser test).
import { collectionPath, imageUrl, post } from "./api.js";
import { $, clear, h, lazyImage, parseJsonObject } from "./dom.js";
import { openPage } from "./hitview.js";
import { report } from "./report.js";
import { on, state } from "./state.js";

let generation = 0;

function snippet(hit) {
  if (typeof hit.text !== "string") return null;
  const first = Number.isInteger(hit.line_start) ? hit.line_start : null;
  const lines = hit.text.split("\n").slice(0, 8);
  return h(
    "pre",
    { class: "snippet" },
    lines.map((line, i) => [first === null ? "" : h("span", { class: "ln" }, `${first + i}`), line, "\n"]),
  );
}

function card(collection, query, hit, rank) {
  const img = h("img", { alt: `page ${hit.page} of ${hit.document_id}`, width: 160 });
  const text = snippet(hit);
  if (!text) lazyImage(img, () => imageUrl(collection, hit.document_id, hit.page, "thumbnail"));
  const view = { collection, documentId: hit.document_id, page: hit.page, query, rank, score: hit.score };
  const open = () => openPage({ ...view, highlights: hit.highlights });
  const signals = Object.entries(hit.signals || {})
    .map(([name, s]) => `${name} #${s.rank}`)
    .join(" · ");
  return h(
    "li",
    { class: "hit" },
    h(
      "button",
      { type: "button", class: "hit-button", onclick: open, dataset: { rank } },
      text || img,
      h(
        "span",
        { class: "hit-facts" },
        h("span", { class: "rank" }, `#${rank}`),
        h("span", { class: "score" }, hit.score.toFixed(3)),
      ),
      h("span", { class: "hit-doc" }, hit.document_id),
      h("span", { class: "muted" }, `page ${hit.page}`),
      signals ? h("span", { class: "muted signals" }, signals) : null,
    ),
  );
}

async function search(event) {
  event.preventDefault();
  const c = state.collection;
  if (!c) return;
  const data = new FormData(event.currentTarget);
  const body = { query: String(data.get("query")), top_k: Number(data.get("top_k") || 10) };
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
    status.textContent = err.message;
    report(err);
  }
}

export function initSearch() {
  $("#search-form").addEventListener("submit", search);
  on("collection", () => {
    generation += 1;
    clear($("#results"));
    $("#search-status").textContent = "";
  });
}
