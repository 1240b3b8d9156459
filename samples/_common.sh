# Shared by the sample scripts: server URL, optional API key, and `call` (curl that fails on HTTP errors).
#   JEV4_URL      server base URL (default http://127.0.0.1:8080)
#   JEV4_API_KEYS the server's keys (the same variable that configures it): the first is sent as
#                 "Authorization: Bearer ..." when set
URL="${JEV4_URL:-http://127.0.0.1:8080}"
AUTH=()
if [[ -n "${JEV4_API_KEYS:-}" ]]; then AUTH=(-H "Authorization: Bearer ${JEV4_API_KEYS%%,*}"); fi

call() {  # call METHOD PATH [curl args...]  -> prints the response body; exits non-zero on HTTP >= 400
  local method="$1" path="$2"
  shift 2
  if [[ -t 1 ]]; then  # a terminal: base64 images and long vectors shortened to a note of their size
    curl -sS --fail-with-body -X "$method" "${AUTH[@]}" "$@" "${URL}${path}" | python3 "${BASH_SOURCE[0]%/*}/_shorten.py"
  else
    curl -sS --fail-with-body -X "$method" "${AUTH[@]}" "$@" "${URL}${path}"
  fi
  echo
}

json() {  # json METHOD PATH FILE  -> sends FILE as the JSON body
  call "$1" "$2" -H "Content-Type: application/json" --data-binary "@$3"
}

field() {  # field NAME  -> reads a JSON object on stdin, prints one top-level field
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
