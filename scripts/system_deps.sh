#!/usr/bin/env bash
# The programs the tests need beside the Python packages: Debian's `flac` (tests/test_baselines.py checks wavelab's
# FLAC accounting against the reference encoder) and Debian's chromium at /usr/bin/chromium (the rendered-book check,
# tests/test_rendered_book.py, drives it with the playwright Python package; Playwright's own browser download,
# `playwright install`, is never used). Installs whatever is missing with apt-get when apt-get is there and we are
# root; otherwise (or if the install fails) it says what to install and carries on: the tests that need it then skip
# naming it, or fail under CI=true. WAVELAB_CHROMIUM set to a Chromium executable stands in for /usr/bin/chromium.
set -euo pipefail
missing=()
command -v flac >/dev/null 2>&1 || missing+=(flac)
if [ -z "${WAVELAB_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "system_deps: missing ${missing[*]}; installing Debian's packages (apt-get update, apt-get install ${missing[*]})"
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq \
     && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "system_deps: installed ${missing[*]}"
  else
    echo "system_deps: apt-get could not install ${missing[*]}; the tests that need them will name what is missing" >&2
  fi
else
  echo "system_deps: ${missing[*]} missing and not installable here (needs apt-get and root):" \
       "install them with \`apt-get install ${missing[*]}\`" >&2
fi
