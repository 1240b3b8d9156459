// Hit view: a page at full resolution with the query's similarity heatmap over it (the whole query's map by
// default, one token's map on click, an opacity slider) and previous / next page of the document.
import { imageUrl, pagePath, post } from "./api.js";
import { $, clear, h } from "./dom.js";
import { combined, paint } from "./heatmap.js";
import { report } from "./report.js";

let current = null; // {collection, documentId, page, query, rank, score, highlights?}
let similarity = null; // the API's similarity_map of the shown page
let generation = 0;

function title(view) {
  const parts = [`${view.documentId} · page ${view.page}`];
  if (view.rank) parts.push(`rank #${view.rank}`);
  if (typeof view.score === "number") parts.push(`score ${view.score.toFixed(3)}`);
  return parts.join(" · ");
}

function showToken(index) {
  if (!similarity) return;
  const grid = index === "all" ? combined(similarity.maps) : similarity.maps[index];
  const canvas = $("#hit-heatmap");
  paint(canvas, grid);
  canvas.dataset.token = String(index);
  for (const b of document.querySelectorAll("#hit-tokens button")) {
    b.setAttribute("aria-pressed", String(b.dataset.token === String(index)));
  }
}

function tokenButtons(tokens) {
  const box = clear($("#hit-tokens"));
  const button = (label, token, hint) =>
    h("button", { type: "button", class: "token", dataset: { token }, title: hint, onclick: () => showToken(token) }, label);
  box.append(button("whole query", "all", "max over all query tokens"));
  tokens.forEach((t, i) => box.append(button(t.trim() ? t : `␣${t}`, String(i), `token ${i}`)));
}

// Matched words (hybrid search's `highlights`: boxes in pixels of the page image) as outlined boxes.
function showBoxes(boxes, img) {
  const layer = clear($("#hit-boxes"));
  if (!Array.isArray(boxes) || !img.naturalWidth) return;
  const w = img.naturalWidth;
  const hgt = img.naturalHeight;
  for (const b of boxes) {
    const box = h("span", { class: "word-box", title: b.word });
    box.style.left = `${(100 * b.x0) / w}%`;
    box.style.top = `${(100 * b.y0) / hgt}%`;
    box.style.width = `${(100 * (b.x1 - b.x0)) / w}%`;
    box.style.height = `${(100 * (b.y1 - b.y0)) / hgt}%`;
    layer.append(box);
  }
}

async function loadMap(view, mine) {
  const answer = await post(`${pagePath(view.collection, view.documentId, view.page)}/similarity`, {
    query: view.query,
  });
  if (mine !== generation) return;
  similarity = answer.similarity_map;
  tokenButtons(similarity.tokens);
  showToken("all");
  $("#hit-status").textContent =
    `Similarity of each query token with each ${similarity.rows}×${similarity.cols} patch; ` +
    "click a token to see its map.";
}

export async function openPage(view) {
  const mine = ++generation;
  current = view;
  similarity = null;
  const dialog = $("#hit-dialog");
  $("#hit-title").textContent = title(view);
  $("#hit-prev").disabled = view.page <= 1;
  $("#hit-status").textContent = "Loading…";
  clear($("#hit-tokens"));
  const canvas = $("#hit-heatmap");
  canvas.width = 0;
  canvas.height = 0;
  delete canvas.dataset.token;
  $("#hit-caption").textContent = view.query ? `Query: ${view.query}` : "Search to see where a query matches.";
  if (!dialog.open) dialog.showModal();
  try {
    const url = await imageUrl(view.collection, view.documentId, view.page, "full");
    if (mine !== generation) return;
    const img = $("#hit-image");
    img.alt = `page ${view.page} of document ${view.documentId}`;
    img.src = url;
    clear($("#hit-boxes"));
    if (view.highlights) img.decode().then(() => mine === generation && showBoxes(view.highlights, img), () => {});
    if (view.query) await loadMap(view, mine);
    else $("#hit-status").textContent = "";
  } catch (err) {
    if (mine !== generation) return;
    $("#hit-status").textContent = err.message;
    if (err.status === 401) report(err);
  }
}

function step(delta) {
  if (!current || current.page + delta < 1) return;
  openPage({ ...current, page: current.page + delta, rank: undefined, score: undefined, highlights: undefined });
}

export function initHitView() {
  const dialog = $("#hit-dialog");
  $("#hit-prev").addEventListener("click", () => step(-1));
  $("#hit-next").addEventListener("click", () => step(1));
  $("#hit-close").addEventListener("click", () => dialog.close());
  $("#hit-opacity").addEventListener("input", (e) => {
    $("#hit-heatmap").style.opacity = String(Number(e.target.value) / 100);
  });
  $("#hit-heatmap").style.opacity = "0.6";
  dialog.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement) return;
    if (e.key === "ArrowLeft") step(-1);
    if (e.key === "ArrowRight") step(1);
  });
}
