#!/bin/sh
# Make sure Debian's Chromium is there for the end-to-end tests (tests/e2e drives /usr/bin/chromium
# through Playwright; no browser is ever downloaded). Idempotent: does nothing when it is installed.
# As root it installs the `chromium` package with apt; otherwise it says how and exits non-zero.
set -eu

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    echo "ensure-chromium: $CHROMIUM is missing; installing Debian's chromium package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium
    if [ -x "$CHROMIUM" ]; then
        exit 0
    fi
    echo "ensure-chromium: the chromium package is installed but $CHROMIUM is still missing" >&2
    exit 1
fi

cat >&2 <<MSG
ensure-chromium: $CHROMIUM is missing, and installing it needs root. Run:
    sudo apt-get update && sudo apt-get install -y chromium
(Debian's package: the e2e tests never download a browser.) Without it the e2e tests are
skipped on a developer machine and fail in CI.
MSG
exit 1
