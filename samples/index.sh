#!/usr/bin/env bash
# (Re)create the "samples" collection and add both sample documents:
#   - report.pdf as a multipart upload in the background (?wait=false), polling the job's progress;
#   - dashboard.png as a JSON request (requests/add_dashboard.json, the image as a data URI).
set -euo pipefail
cd "$(dirname "$0")"
source ./_common.sh

curl -sS -o /dev/null -X DELETE "${AUTH[@]}" "${URL}/v1/collections/samples" || true
json POST /v1/collections requests/create_collection.json

job=$(call POST "/v1/collections/samples/documents?wait=false" \
  -F "file=@report.pdf;type=application/pdf" \
  -F 'metadata={"kind": "report", "title": "Northwind Trading - Annual Report 2024"}' \
  -F "document_id=report")
echo "$job"
job_id=$(echo "$job" | field id)
for _ in $(seq 600); do
  state=$(call GET "/v1/collections/samples/jobs/${job_id}")
  status=$(echo "$state" | field status)
  echo "report.pdf: ${status}, pages $(echo "$state" | field pages_done) of $(echo "$state" | field pages_total)"
  case "$status" in
    succeeded) break ;;
    failed) echo "$state" >&2; exit 1 ;;
  esac
  sleep 0.5
done
[[ "$status" == succeeded ]] || { echo "report.pdf: still ${status} after 5 minutes" >&2; exit 1; }

json POST /v1/collections/samples/documents requests/add_dashboard.json
call GET /v1/collections/samples
