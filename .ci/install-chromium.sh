#!/usr/bin/env bash
# Install headless Chromium (Debian's `chromium` package) for the report browser test, when missing.
# Called by .ci/run; safe to run again. Exits non-zero when it cannot install (no apt, no root, offline):
# the browser test then skips with a clear reason.
set -euo pipefail

for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then
    echo "chromium present: $(command -v "$candidate")"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not available; cannot install chromium" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "not root and no passwordless sudo; cannot install chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null 2>&1 && echo "installed $(chromium --version 2>/dev/null || echo chromium)"
