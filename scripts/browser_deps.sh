#!/usr/bin/env bash
# The browser for the rendered-book check (tests/test_rendered_book.py): Debian's chromium at /usr/bin/chromium,
# driven by the playwright Python package (installed by scripts/setup.sh from requirements.txt; Playwright's own
# browser download, `playwright install`, is never used). Installs chromium with apt-get when it is missing and
# apt-get is there and we are root; otherwise (or if the install fails) it says so and carries on: the browser tests
# then skip with what is missing, or fail with it under CI=true. With WAVELAB_CHROMIUM set it does nothing.
set -euo pipefail
if [ -n "${WAVELAB_CHROMIUM:-}" ] || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "browser_deps: /usr/bin/chromium missing; installing Debian's chromium (apt-get update, apt-get install chromium)"
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq \
     && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "browser_deps: installed $(command -v chromium)"
  else
    echo "browser_deps: apt-get could not install chromium; the rendered-book check will report it missing" >&2
  fi
else
  echo "browser_deps: /usr/bin/chromium missing and not installable here (needs apt-get and root):" \
       "install it with \`apt-get install chromium\`" >&2
fi
