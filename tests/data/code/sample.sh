#!/usr/bin/env bash
set -euo pipefail

# Print a greeting.
greet() {
  echo "hello $1"
}

cleanup() {
  rm -rf "$TMP"
}

greet world
