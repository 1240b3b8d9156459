#!/usr/bin/env bash
# Embed the sample code file as a code passage, and a natural-language code query.
set -euo pipefail
cd "$(dirname "$0")"
source ./_common.sh

json POST /v1/embeddings requests/embed_code.json
json POST /v1/embeddings requests/embed_code_query.json
