#!/usr/bin/env bash
# Search the "samples" collection (run index.sh first):
#   - a question about the report's table, top 3 pages;
#   - a question about the dashboard, filtered to screenshots, with the page image (base64 PNG) and the
#     similarity map of every query token over the page's patch grid;
#   - one search per mode: visual (first stage + exact MaxSim), text (BM25 over the pages' text layer, with
#     the page text and the boxes of the matched words) and hybrid (both, fused; the default for text queries).
set -euo pipefail
cd "$(dirname "$0")"
source ./_common.sh

json POST /v1/collections/samples/search requests/search_revenue.json
json POST /v1/collections/samples/search requests/search_tickets_with_map.json
json POST /v1/collections/samples/search requests/search_visual.json
json POST /v1/collections/samples/search requests/search_text.json
json POST /v1/collections/samples/search requests/search_hybrid.json
