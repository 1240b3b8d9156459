#!/usr/bin/env bash
# What the checks need beyond serving (run by `bash scripts/setup.sh --test`, after .venv exists): the dev tools
# (pytest, ruff, mypy, ...), the search page's browser-test dependencies (Debian's chromium + chromium-driver by
# apt, as root; axe-core by npm from package-lock.json) and the Jina client integrations in .clients-venv.
#
# Each step that fails says what failed, why (apt busy, not root, no apt-get, network) and how to retry; the tests
# that need it then skip with the reason. Under CI (CI set and not empty) those tests must run, so any failure here
# ends the script with exit 1 after all steps were tried.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RETRY="retry with: bash scripts/setup.sh --test"
failed=()

fail() {  # $1: what is missing and why (one line)
  echo "setup: $1; $RETRY" >&2
  failed+=("$1")
}

apt_install() {  # $@: Debian packages the browser tests need
  local log reason
  if ! command -v apt-get >/dev/null 2>&1; then
    reason="apt-get is not on this system (install them with its package manager)"
  elif [ "$(id -u)" != 0 ]; then
    reason="installing them needs root (sudo apt-get install $*)"
  else
    log=$(mktemp)
    # wait a while for a lock held by another apt/dpkg (unattended upgrades) before calling it busy
    if apt-get -o DPkg::Lock::Timeout=60 update -qq >"$log" 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 install -y -qq "$@" >>"$log" 2>&1; then
      rm -f "$log"
      return 0
    fi
    if grep -qiE "could not get lock|unable to (acquire|lock)" "$log"; then
      reason="apt is busy (another process holds its lock)"
    else
      reason="apt-get failed ($(grep -m1 -E '^(E|Err):' "$log" || tail -n1 "$log"))"
    fi
    rm -f "$log"
  fi
  fail "$reason; the browser tests need $*"
}

.venv/bin/python -m pip install -q -e ".[dev]" || fail "pip could not install the dev tools (.[dev]) into .venv"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
if [ -f node_modules/axe-core/axe.min.js ]; then
  :
elif ! command -v npm >/dev/null 2>&1; then
  fail "npm is missing, so axe-core (the search page's accessibility checks) cannot be installed"
elif ! npm ci --no-audit --no-fund --loglevel=error; then
  fail "npm ci failed (axe-core for the search page's accessibility checks; see npm's message above)"
fi

# The Jina client integrations (LlamaIndex, LangChain, Haystack) the test suite drives, in their own venv.
if ! { [ -x .clients-venv/bin/python ] || "$PY" -m venv .clients-venv; } \
  || ! .clients-venv/bin/python -m pip install -q -r scripts/clients-requirements.txt; then
  fail "could not make .clients-venv (the Jina client integration tests need it; see pip's message above)"
fi

if [ ${#failed[@]} -gt 0 ]; then
  if [ -n "${CI:-}" ]; then
    echo "setup --test: ${#failed[@]} test dependencies missing, and CI must run every test: failing" >&2
    exit 1
  fi
  echo "setup --test: ${#failed[@]} test dependencies missing (above): the tests that need them will skip" >&2
else
  echo "setup --test done: dev tools, chromium, chromium-driver, axe-core, .clients-venv"
fi
