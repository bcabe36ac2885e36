#!/bin/sh
# Chromium full-screen on the edgepose page, started by the desktop session
# (deploy/edgepose-kiosk.desktop in ~/.config/autostart/; docs/devices.md, "Kiosk with a
# browser"). Waits until `edgepose serve` answers, then shows the page; starts Chromium
# again if it exits (a crash, an update). Settings from the environment:
#   EDGEPOSE_URL      the page (default http://127.0.0.1:8080/; add ?token=... if set)
#   EDGEPOSE_WAIT_S   how long to wait for the server before showing the page anyway (120)
#   EDGEPOSE_BROWSER  the browser (default: chromium-browser or chromium, whichever exists)
#   EDGEPOSE_RESPAWN  0: run the browser once and exit with it (default 1: restart it)
set -u
URL="${EDGEPOSE_URL:-http://127.0.0.1:8080/}"
WAIT_S="${EDGEPOSE_WAIT_S:-120}"
RESPAWN="${EDGEPOSE_RESPAWN:-1}"
BROWSER="${EDGEPOSE_BROWSER:-$(command -v chromium-browser || command -v chromium || true)}"
if [ -z "$BROWSER" ]; then
    echo "edgepose-kiosk: no Chromium found: sudo apt install chromium (or chromium-browser)" >&2
    exit 1
fi

# Any HTTP answer counts (the page may say 503 while the camera is lost): the server is up.
answers() {
    python3 - "$1" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2).close()
except urllib.error.HTTPError:
    pass
except OSError:
    sys.exit(1)
PY
}

waited=0
until answers "$URL"; do
    if [ "$waited" -ge "$WAIT_S" ]; then
        echo "edgepose-kiosk: $URL does not answer after ${WAIT_S} s (systemctl status edgepose-serve); showing it anyway" >&2
        break
    fi
    sleep 1
    waited=$((waited + 1))
done

# --ozone-platform=wayland on a Wayland session (labwc, wayfire); X11 otherwise.
while :; do
    "$BROWSER" --kiosk --noerrdialogs --disable-infobars --no-first-run \
        --disable-session-crashed-bubble --disable-features=Translate \
        --check-for-update-interval=31536000 --password-store=basic \
        ${WAYLAND_DISPLAY:+--ozone-platform=wayland} "$URL"
    code=$?
    [ "$RESPAWN" = "1" ] || exit "$code"
    sleep 2
done
