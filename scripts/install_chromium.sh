#!/bin/sh
# Install Debian's Chromium for the headless-browser test of the book
# (tests/book/test_browser.py drives it through Playwright's Python API with
# executable_path=/usr/bin/chromium; `playwright install` is never needed).
#
# Never fails: without root (or passwordless sudo) it only says what to do,
# and the browser test itself reports a missing Chromium as a failure.

find_chromium() {
    if [ -n "${CHROMIUM:-}" ] && [ -x "${CHROMIUM}" ]; then echo "${CHROMIUM}"; return 0; fi
    for c in /usr/bin/chromium chromium chromium-browser; do
        p=$(command -v "$c" 2>/dev/null) && [ -n "$p" ] && { echo "$p"; return 0; }
    done
    return 1
}

if path=$(find_chromium); then
    echo "install_chromium: Chromium already installed: $path"
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install_chromium: Chromium not found and no root/passwordless sudo."
    echo "  Install Debian's package:  sudo apt-get install chromium"
    echo "  or point the tests at a Chrome/Chromium binary:  export CHROMIUM=/path/to/chrome"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: no apt-get here; install Chromium with your package manager"
    echo "  or set CHROMIUM=/path/to/chrome for the tests."
    exit 0
fi

echo "install_chromium: installing Debian's chromium ..."
if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
   && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; then
    echo "install_chromium: installed $(find_chromium || echo '(not on PATH?)')"
else
    echo "install_chromium: apt-get failed; install chromium manually or set CHROMIUM=/path/to/chrome"
fi
exit 0
