"""Drive the published Jina integrations (LlamaIndex, LangChain, Haystack) against a jev4-serve server.

Runs INSIDE ``.clients-venv`` (made by ``scripts/setup.sh --test``; those packages pull dependencies the project
does not want), started by ``tests/service/http/test_clients_ecosystem.py`` as ``python clients_driver.py SCENARIO``,
with ``JEV4_URL``, ``JEV4_KEY`` and ``JEV4_IMAGE`` (a PNG file) in the environment. Prints one JSON object: what each
client call returned (vectors as lists, rerank results as index/score pairs), for the test to check against the
server's own answers. Each client is pointed at the server the way its docs allow (constructor ``base_url``,
or the module constant the client reads).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

URL = os.environ["JEV4_URL"]
KEY = os.environ["JEV4_KEY"]
IMAGE = os.environ["JEV4_IMAGE"]
MODEL = "jina-embeddings-v4"
TEXTS = ["the cat sat on the mat", "stock prices fell sharply", "a kitten sleeping"]
QUERY = "cats"


def llamaindex_embed() -> dict[str, Any]:
    from llama_index.embeddings.jinaai import JinaEmbedding
    from llama_index.embeddings.jinaai.base import _JinaAPICaller

    out: dict[str, Any] = {}
    for encoding in ("float", "ubinary", "binary"):
        emb = JinaEmbedding(
            model=MODEL,
            api_key=KEY,
            task="retrieval.passage",
            dimensions=32,
            late_chunking=False,
            encoding_queries=encoding,
            encoding_documents=encoding,
        )
        # JinaEmbedding does not forward base_url; its API caller takes one.
        emb._api = _JinaAPICaller(model=MODEL, base_url=f"{URL}/v1", api_key=KEY)
        out[f"docs_{encoding}"] = emb.get_text_embedding_batch(TEXTS)
    query = JinaEmbedding(model=MODEL, api_key=KEY, task="retrieval.query")
    query._api = _JinaAPICaller(model=MODEL, base_url=f"{URL}/v1", api_key=KEY)
    out["query"] = query.get_query_embedding(QUERY)
    out["query_async"] = asyncio.run(query.aget_query_embedding(QUERY))
    out["image"] = query.get_image_embedding(IMAGE)  # {"bytes": base64}: no task sent
    late = JinaEmbedding(model=MODEL, api_key=KEY, task="retrieval.passage", late_chunking=True)
    late._api = _JinaAPICaller(model=MODEL, base_url=f"{URL}/v1", api_key=KEY)
    out["late"] = late.get_text_embedding_batch(TEXTS)
    return out


def llamaindex_rerank() -> dict[str, Any]:
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.jinaai_rerank import JinaRerank

    rerank = JinaRerank(top_n=2, model=MODEL, base_url=f"{URL}/v1", api_key=KEY)
    nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i))) for i, t in enumerate(TEXTS)]
    ranked = rerank.postprocess_nodes(nodes, query_str=QUERY)
    return {"results": [[int(n.node.id_), n.score] for n in ranked]}


def langchain_embed() -> dict[str, Any]:
    from langchain_community.embeddings import jina

    jina.JINA_API_URL = f"{URL}/v1/embeddings"  # the module constant the client posts to
    emb = jina.JinaEmbeddings(jina_api_key=KEY, model_name=MODEL)
    return {
        "docs": emb.embed_documents(TEXTS),
        "query": emb.embed_query(QUERY),
        "images": emb.embed_images([IMAGE]),  # {"bytes": base64}
    }


def langchain_rerank() -> dict[str, Any]:
    from langchain_community.document_compressors import jina_rerank
    from langchain_core.documents import Document

    jina_rerank.JINA_API_URL = f"{URL}/v1/rerank"
    rerank = jina_rerank.JinaRerank(jina_api_key=KEY, model=MODEL, top_n=2)
    all_results = rerank.rerank(TEXTS, QUERY, top_n=None)
    top = rerank.compress_documents([Document(page_content=t) for t in TEXTS], QUERY)
    return {
        "all": [[r["index"], r["relevance_score"]] for r in all_results],
        "top": [[d.page_content, d.metadata["relevance_score"]] for d in top],
    }


def haystack() -> dict[str, Any]:
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.embedders.jina import (
        JinaDocumentEmbedder,
        JinaDocumentImageEmbedder,
        JinaTextEmbedder,
    )
    from haystack_integrations.components.rankers.jina import JinaRanker

    key = Secret.from_token(KEY)
    embeddings = f"{URL}/v1/embeddings"
    text = JinaTextEmbedder(api_key=key, model=MODEL, task="retrieval.query", dimensions=32, base_url=embeddings)
    docs = JinaDocumentEmbedder(
        api_key=key, model=MODEL, task="retrieval.passage", late_chunking=True, progress_bar=False, base_url=embeddings
    )
    images = JinaDocumentImageEmbedder(api_key=key, model=MODEL, embedding_dimension=32, base_url=embeddings)
    ranker = JinaRanker(api_key=key, model=MODEL, top_k=2, base_url=f"{URL}/v1/rerank")
    query = text.run(QUERY)
    embedded = docs.run([Document(content=t) for t in TEXTS])
    imaged = images.run([Document(content="picture", meta={"file_path": IMAGE})])
    ranked = ranker.run(query=QUERY, documents=[Document(content=t) for t in TEXTS])
    return {
        "query": query["embedding"],
        "query_usage": query["meta"]["usage"],
        "late_docs": [d.embedding for d in embedded["documents"]],
        "image": imaged["documents"][0].embedding,
        "ranked": [[d.content, d.score] for d in ranked["documents"]],
    }


def errors() -> dict[str, Any]:
    """What each client raises when the server refuses a request (a model name it does not serve)."""
    from langchain_community.embeddings import jina

    jina.JINA_API_URL = f"{URL}/v1/embeddings"
    try:
        jina.JinaEmbeddings(jina_api_key=KEY, model_name="jina-embeddings-v3").embed_query("x")
    except RuntimeError as exc:
        return {"langchain": str(exc)}
    return {"langchain": None}


SCENARIOS = {f.__name__: f for f in (llamaindex_embed, llamaindex_rerank, langchain_embed, langchain_rerank, haystack)}
SCENARIOS["errors"] = errors

if __name__ == "__main__":
    names = list(SCENARIOS) if sys.argv[1] == "all" else sys.argv[1:]
    json.dump({name: SCENARIOS[name]() for name in names}, sys.stdout)
