// Collections panel: list (documents, pages, codec, size), select, create, delete with confirmation.
import { collectionPath, del, forgetImages, get, post } from "./api.js";
import { $, clear, confirmDialog, formatBytes, h, showBanner } from "./dom.js";
import { report } from "./report.js";
import { emit, holdsChunks, on, state, unitWord } from "./state.js";

// Size on disk: the collection object's `disk_bytes` (embedded backend); null where the server cannot see it
// (Qdrant) -> "—".
const sizeOf = (c) => (typeof c.disk_bytes === "number" ? formatBytes(c.disk_bytes) : "—");

function item(c) {
  const selected = state.collection && state.collection.name === c.name;
  const task = c.task && c.task !== "retrieval" ? ` · ${c.task}` : "";
  const facts = `${c.documents} ${c.documents === 1 ? "doc" : "docs"} · ${c.pages} ${unitWord(c, c.pages)}${task} · ${c.codec} · ${sizeOf(c)} on disk`;
  return h(
    "li",
    { class: selected ? "selected" : "" },
    h(
      "button",
      {
        type: "button",
        class: "collection-button",
        "aria-current": selected ? "true" : false,
        dataset: { collection: c.name },
        onclick: () => select(c),
      },
      h("span", { class: "name" }, c.name),
      h("span", { class: "facts muted" }, facts),
    ),
    h(
      "button",
      {
        type: "button",
        class: "icon danger",
        "aria-label": `Delete collection ${c.name}`,
        title: "Delete",
        onclick: () => remove(c),
      },
      "✕",
    ),
  );
}

export async function loadCollections() {
  const list = await get("/v1/collections");
  const ul = clear($("#collection-list"));
  if (!list.data.length) ul.append(h("li", { class: "muted" }, "No collections yet."));
  for (const c of list.data) ul.append(item(c));
  if (state.collection) {
    const fresh = list.data.find((c) => c.name === state.collection.name);
    if (fresh) state.collection = fresh;
    else select(null);
  }
  return list.data;
}

function select(c) {
  if ((state.collection && state.collection.name) !== (c && c.name)) forgetImages();
  state.collection = c;
  $("#empty-state").hidden = Boolean(c);
  $("#collection-view").hidden = !c;
  if (c) {
    $("#collection-title").textContent = `${c.name}`;
    $("#collection-title").append(
      h(
        "span",
        { class: "muted sub" },
        ` ${c.dimensions}-d dense · ${c.codec} · pool ${c.pool_factor}` +
          (c.task ? ` · task ${c.task}` : "") +
          (holdsChunks(c) ? " · text and code files" : ""),
      ),
    );
  }
  for (const b of document.querySelectorAll(".collection-button")) {
    const on_ = Boolean(c) && b.dataset.collection === c.name;
    b.parentElement.classList.toggle("selected", on_);
    if (on_) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
  emit("collection", c);
}

async function remove(c) {
  const ok = await confirmDialog(
    `Delete collection "${c.name}" with its ${c.documents} documents (${c.pages} pages)? This cannot be undone.`,
  );
  if (!ok) return;
  try {
    await del(collectionPath(c.name));
    if (state.collection && state.collection.name === c.name) select(null);
    await loadCollections();
  } catch (err) {
    report(err);
  }
}

function fillDimensions(ready) {
  const select_ = $("#create-form select[name=dimensions]");
  const dims = ready && Array.isArray(ready.matryoshka_dims) ? [...ready.matryoshka_dims] : [];
  if (ready && ready.dimensions && !dims.includes(ready.dimensions)) dims.push(ready.dimensions);
  dims.sort((a, b) => b - a);
  select_.replaceChildren(h("option", { value: "" }, "model's full size"), ...dims.map((d) => h("option", {}, d)));
}

async function create(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $(".form-error", form);
  error.textContent = "";
  const data = new FormData(form);
  const body = { name: data.get("name"), codec: data.get("codec"), pool_factor: Number(data.get("pool_factor")) };
  if (data.get("dimensions")) body.dimensions = Number(data.get("dimensions"));
  if (!$("#create-kind").hidden) {
    body.task = data.get("task");
    if (data.get("unit_kind")) body.unit_kind = data.get("unit_kind");
  }
  try {
    const c = await post("/v1/collections", body);
    form.reset();
    showBanner("");
    await loadCollections();
    select(c);
  } catch (err) {
    if (err.status === 401) report(err);
    else error.textContent = err.message;
  }
}

// Task and content kind (text/code collections) are offered when this server's API has them: its OpenAPI
// schema's CreateCollectionRequest names `task`.
async function offerKinds() {
  try {
    const response = await fetch("/docs/openapi.json");
    if (!response.ok) return;
    const schemas = (await response.json()).components?.schemas || {};
    const create = Object.entries(schemas).find(([name]) => name.endsWith("CreateCollectionRequest"));
    $("#create-kind").hidden = !(create && create[1].properties && create[1].properties.task);
  } catch {
    // no schema: the form stays without them
  }
}

export function initCollections(ready) {
  fillDimensions(ready);
  offerKinds();
  $("#create-form").addEventListener("submit", create);
  on("changed", () => loadCollections().catch(report));
}
