#!/usr/bin/env bash
# Code search: (re)create the "code" collection (task "code": code.passage / code.query prompts), add
#   - code/maxsim.py as a multipart upload (its name says Python: cut into functions with line ranges),
#   - a Markdown README as a JSON text document (requests/add_code_readme.json: cut into sections),
# then search it: every hit names its path, chunk kind, name, line range and text.
set -euo pipefail
cd "$(dirname "$0")"
source ./_common.sh

curl -sS -o /dev/null -X DELETE "${AUTH[@]}" "${URL}/v1/collections/code" || true
json POST /v1/collections requests/create_code_collection.json
call POST /v1/collections/code/documents -F "file=@code/maxsim.py" -F "path=code/maxsim.py" -F "document_id=maxsim"
json POST /v1/collections/code/documents requests/add_code_readme.json
json POST /v1/collections/code/search requests/search_code.json
