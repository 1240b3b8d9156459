// Hit view: a page at full resolution with the query's similarity heatmap over it (the whole query's map by
// default, one token's map on click, an opacity slider), the matched words' boxes (hybrid search's `highlights`)
// the query's regions on the page (numbered boxes, their text beside: regions.js)
// and previous / next page of the document (its own page numbers: a page selection such as 1,3 steps 1 -> 3).
import { imageUrl, pageNumbers, pagePath, post } from "./api.js";
import { $, clear, formatScore, h } from "./dom.js";
import { combined, paint } from "./heatmap.js";
import { clearRegions, showRegions } from "./regions.js";
import { report } from "./report.js";

let current = null; // {collection, documentId, page, query, rank, score, highlights?}
let neighbours = { prev: null, next: null }; // the document's page numbers around the shown one
let similarity = null; // the API's similarity_map of the shown page
let generation = 0;

function title(view) {
  const parts = [`${view.documentId} · page ${view.page}`];
  if (view.rank) parts.push(`rank #${view.rank}`);
  if (typeof view.score === "number") parts.push(`score ${formatScore(view.score)}`);
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

// Matched words (search's `highlights`: boxes in pixels of the stored page image, which is the image shown) as
// outlined boxes, placed in percent of the image so they follow its displayed size.
function showBoxes(boxes, img) {
  const layer = clear($("#hit-boxes"));
  if (!Array.isArray(boxes) || !img.naturalWidth) return;
  const w = img.naturalWidth;
  const hgt = img.naturalHeight;
  for (const b of boxes) {
    const box = h("span", { class: "word-box", title: b.word, dataset: { word: b.word } });
    box.style.left = `${(100 * b.x0) / w}%`;
    box.style.top = `${(100 * b.y0) / hgt}%`;
    box.style.width = `${(100 * (b.x1 - b.x0)) / w}%`;
    box.style.height = `${(100 * (b.y1 - b.y0)) / hgt}%`;
    layer.append(box);
  }
}

// The page as large as the dialog allows (beside the side panel on wide screens, above it on narrow ones),
// its aspect kept; small stored pages are scaled up too. The heatmap and boxes follow the image's box.
function fitImage() {
  const img = $("#hit-image");
  if (!img.naturalWidth) return;
  const dialog = $("#hit-dialog");
  const wide = dialog.clientWidth >= 720;
  const width = Math.max(160, dialog.clientWidth - (wide ? 330 : 40));
  const height = Math.max(160, window.innerHeight * (wide ? 0.8 : 0.6));
  const scale = Math.min(width / img.naturalWidth, height / img.naturalHeight);
  img.style.width = `${Math.floor(img.naturalWidth * scale)}px`;
  img.style.height = `${Math.floor(img.naturalHeight * scale)}px`;
}

function drawBoxes(boxes, mine) {
  const img = $("#hit-image");
  img.decode().then(
    () => {
      if (mine !== generation) return;
      showBoxes(boxes, img);
      $("#hit-boxes").dataset.count = String(boxes.length);
      if (boxes.length) {
        $("#hit-caption").textContent += ` · ${boxes.length} matched word${boxes.length === 1 ? "" : "s"} outlined`;
      }
    },
    () => {},
  );
}

async function loadMap(view, mine) {
  // a hit brings its boxes from search; a page reached by previous / next asks for them here
  const answer = await post(`${pagePath(view.collection, view.documentId, view.page)}/similarity`, {
    query: view.query,
    highlight: !view.highlights,
    regions: true,
  });
  if (mine !== generation) return;
  if (!view.highlights) drawBoxes(answer.highlights || [], mine);
  showRegions(answer.regions || []);
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
  neighbours = { prev: null, next: null }; // the buttons keep their state (and focus) until the numbers come
  pageNumbers(view.collection, view.documentId).then(
    (numbers) => {
      if (mine !== generation) return;
      const at = numbers.indexOf(view.page);
      neighbours = { prev: at > 0 ? numbers[at - 1] : null, next: at >= 0 ? (numbers[at + 1] ?? null) : null };
      $("#hit-prev").disabled = neighbours.prev === null;
      $("#hit-next").disabled = neighbours.next === null;
      $("#hit-stage").dataset.pages = numbers.join(",");
    },
    () => {},
  );
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
    img.decode().then(() => mine === generation && fitImage(), () => {});
    delete clear($("#hit-boxes")).dataset.count;
    clearRegions();
    if (view.highlights) drawBoxes(view.highlights, mine);
    if (view.query) await loadMap(view, mine);
    else $("#hit-status").textContent = "";
  } catch (err) {
    if (mine !== generation) return;
    $("#hit-status").textContent = err.message;
    if (err.status === 401) report(err);
  }
}

function step(delta) {
  const page = delta < 0 ? neighbours.prev : neighbours.next;
  if (!current || page === null) return;
  openPage({ ...current, page, rank: undefined, score: undefined, highlights: undefined });
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
  window.addEventListener("resize", () => dialog.open && fitImage());
  dialog.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement) return;
    if (e.key === "ArrowLeft") step(-1);
    if (e.key === "ArrowRight") step(1);
  });
}
