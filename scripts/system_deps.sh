#!/usr/bin/env bash
# The programs the tests need beside the Python packages: Debian's `flac` (tests/test_baselines.py checks wavelab's
# FLAC accounting against the reference encoder) and Debian's chromium at /usr/bin/chromium (the rendered-book check,
# tests/test_rendered_book.py, drives it with the playwright Python package; Playwright's own browser download,
# `playwright install`, is never used). Installs whatever is missing with apt-get when apt-get is there and we are
# root; otherwise (or if the install fails) it says what to install and carries on: the tests that need it then skip
# naming it, or fail under CI=true. WAVELAB_CHROMIUM set to a Chromium executable stands in for /usr/bin/chromium.
#
# With --optional it also installs the optional programs, which no test needs: the lossless codecs that
# benchmarks/lossless_codecs.py measures, Debian's `flake`, `wavpack` (wavpack and wvunpack) and `ffmpeg` (its TTA and
# ALAC encoders). They are installed after the required ones, so a failure there never costs flac or chromium; the
# benchmark names whichever is still missing and measures the others.
set -euo pipefail
optional_wanted=0
for arg in "$@"; do
  case "$arg" in
    --optional) optional_wanted=1 ;;
    *) echo "usage: $0 [--optional]" >&2; exit 2 ;;
  esac
done

# install PACKAGE... with apt-get when possible (root and apt-get); LABEL names them in the messages, NOTE says what
# goes without them
install_missing() {
  local label="$1" note="$2"; shift 2
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "system_deps: missing ${label:+$label }$*; installing Debian's packages (apt-get update, apt-get install $*)"
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq \
       && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
      echo "system_deps: installed $*"
    else
      echo "system_deps: apt-get could not install $*; ${note}" >&2
    fi
  else
    echo "system_deps: ${label:+$label }$* missing and not installable here (needs apt-get and root):" \
         "install them with \`apt-get install $*\`" >&2
  fi
}

missing=()
command -v flac >/dev/null 2>&1 || missing+=(flac)
if [ -z "${WAVELAB_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  install_missing "" "the tests that need them will name what is missing" "${missing[@]}"
fi
[ "$optional_wanted" -eq 1 ] || exit 0
optional=()
command -v flake >/dev/null 2>&1 || optional+=(flake)
{ command -v wavpack >/dev/null 2>&1 && command -v wvunpack >/dev/null 2>&1; } || optional+=(wavpack)
command -v ffmpeg >/dev/null 2>&1 || optional+=(ffmpeg)
if [ ${#optional[@]} -gt 0 ]; then
  install_missing "optional" "benchmarks/lossless_codecs.py will name them and measure the other codecs" \
                  "${optional[@]}"
fi
