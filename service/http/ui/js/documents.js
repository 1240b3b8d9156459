// Documents of the selected collection: id, metadata, pages (lazy-loaded thumbnails), delete.
import { collectionPath, del, enc, forgetPageNumbers, get, imageUrl, pageNumbers } from "./api.js";
import { $, clear, confirmDialog, h, lazyImage, metadataList } from "./dom.js";
import { openPage } from "./hitview.js";
import { report } from "./report.js";
import { emit, holdsChunks, on, state, unitWord } from "./state.js";

const PAGE_SIZE = 50;
const THUMBS_PER_DOCUMENT = 12;
let offset = 0;
let generation = 0; // a newer load (collection switched, document added) wins over an older one

function thumb(collection, doc, page) {
  const img = h("img", { alt: `page ${page} of ${doc.id}`, width: 96 });
  lazyImage(img, () => imageUrl(collection, doc.id, page, "thumbnail"), $("#documents"));
  return h(
    "li",
    {},
    h(
      "button",
      { type: "button", class: "thumb", onclick: () => openPage({ collection, documentId: doc.id, page }) },
      img,
      h("span", { class: "muted" }, `p. ${page}`),
    ),
  );
}

function thumbs(collection, doc) {
  // The document's own page numbers (a PDF indexed with pages "1,3" has 1 and 3), from GET document.
  const list = h("ul", { class: "thumbs", "aria-label": `Pages of ${doc.id}`, "aria-busy": "true" });
  pageNumbers(collection, doc.id).then(
    (numbers) => {
      const shown = numbers.slice(0, THUMBS_PER_DOCUMENT);
      list.append(...shown.map((page) => thumb(collection, doc, page)));
      if (numbers.length > shown.length) list.append(h("li", { class: "muted more" }, `+${numbers.length - shown.length} more`));
      list.dataset.pages = numbers.join(",");
      list.removeAttribute("aria-busy");
    },
    (err) => {
      list.append(h("li", { class: "muted" }, err.message));
      list.removeAttribute("aria-busy");
    },
  );
  return list;
}

function card(collection, doc) {
  const created = new Date(doc.created_at * 1000).toLocaleString();
  const c = state.collection;
  return h(
    "li",
    { class: "document", dataset: { documentId: doc.id } },
    h(
      "div",
      { class: "doc-head" },
      h("span", { class: "doc-id" }, doc.id),
      h("span", { class: "muted" }, ` · ${doc.pages} ${unitWord(c, doc.pages)} · ${created}`),
      h(
        "button",
        { type: "button", class: "icon danger", "aria-label": `Delete document ${doc.id}`, onclick: () => remove(doc) },
        "✕",
      ),
    ),
    metadataList(doc.metadata),
    holdsChunks(c) ? null : thumbs(collection, doc), // chunks have no page images
  );
}

async function load(reset) {
  const c = state.collection;
  if (!c) return;
  const mine = reset ? ++generation : generation;
  const from = reset ? 0 : offset;
  const list = await get(`${collectionPath(c.name)}/documents?offset=${from}&limit=${PAGE_SIZE}`);
  if (mine !== generation) return;
  if (reset) {
    offset = 0;
    forgetPageNumbers(); // a replaced document may have other page numbers
    clear($("#documents"));
  }
  for (const doc of list.data) $("#documents").append(card(c.name, doc));
  offset += list.data.length;
  $("#documents-status").textContent = list.total ? `${list.total} document${list.total === 1 ? "" : "s"}` : "No documents yet: upload some.";
  $("#documents-more").hidden = offset >= list.total;
}

async function remove(doc) {
  const c = state.collection;
  const ok = await confirmDialog(`Delete document "${doc.id}" (${doc.pages} ${unitWord(c, doc.pages)}) from "${c.name}"?`);
  if (!ok) return;
  try {
    await del(`${collectionPath(c.name)}/documents/${enc(doc.id)}`);
    emit("changed", c.name);
  } catch (err) {
    report(err);
  }
}

export function initDocuments() {
  on("collection", () => load(true).catch(report));
  on("changed", () => load(true).catch(report));
  $("#documents-more").addEventListener("click", () => load(false).catch(report));
}
