"""The kiosk page in a real browser: Debian's chromium, headless, driven by Selenium with
Debian's chromedriver (no browser download). The page is served by the web app over the
live engine on the street clip (a loopback MJPEG stream); the skeleton must be drawn where
the pose JSON puts the keypoints; cutting the stream must show the banner, and bringing it
back must hide it and bring frames back."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from live_helpers import open_engine, open_replay, wait_for

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

# one JavaScript call, so the record and the canvas are of the same frame
SAMPLE_JS = """
const record = window.edgepose.last, canvas = document.getElementById('skeleton');
const ctx = canvas.getContext('2d'), rect = canvas.getBoundingClientRect();
const pixel = (x, y) => Array.from(ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data);
const points = record.poses.map((p) => p.keypoints.map((k) => [k[0], k[1], k[3], pixel(k[0], k[1])]));
return {record, points, size: [canvas.width, canvas.height], corner: pixel(1, 1),
        rect: [rect.left, rect.top, rect.width, rect.height], dpr: window.devicePixelRatio,
        config: window.edgepose.state.config};
"""


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install -y chromium chromium-driver; .ci/run does)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,720", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def kiosk(model_path):
    from edgepose.live.web import BackgroundServer

    replay = open_replay()
    engine = open_engine(replay.url, model_path)
    with engine, BackgroundServer(engine, port=0) as web:
        yield replay, engine, web
    replay.kill()


def colour_near(pixel, rgb, tolerance: int) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel[:3], rgb))


def test_page_draws_the_skeleton_and_shows_the_banner_while_the_camera_is_lost(browser, kiosk, tmp_path):
    import cv2

    replay, engine, web = kiosk
    browser.get(web.url + "/")
    js = browser.execute_script
    wait_for(lambda: js("return window.edgepose.drawn") > 5, 60, "frames drawn by the page")
    wait_for(lambda: js("const r = window.edgepose.last; return r && r.poses.length > 0"), 60,
             "a frame with people")
    js("window.edgepose.freeze = true")  # the skeleton stays on this frame for the screenshot
    shot = js(SAMPLE_JS)
    screenshot = tmp_path / "kiosk.png"
    assert browser.save_screenshot(str(screenshot))
    if os.environ.get("EDGEPOSE_KEEP_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["EDGEPOSE_KEEP_SCREENSHOT"])
    config = shot["config"]
    assert shot["size"] == shot["record"]["image_size"]

    # the canvas: each visible keypoint's pixel is its person's colour (edgepose.draw's)
    hits = drawn = total = 0
    for pose, points in zip(shot["record"]["poses"], shot["points"]):
        rgb = config["palette"][pose["id"] % len(config["palette"])] if pose["id"] >= 0 else config["untracked"]
        for x, y, visibility, pixel in points:
            if visibility >= config["min_visibility"] and 0 <= x < shot["size"][0] and 0 <= y < shot["size"][1]:
                total += 1
                hits += colour_near(pixel, rgb, 3) and pixel[3] == 255
                # or a neighbour's white ring, or the antialiased edge between the two
                # (face points lie a few pixels apart): a mix of the colour and white
                drawn += pixel[3] == 255 and all(p >= c - 3 for p, c in zip(pixel[:3], rgb))
    assert total >= 10 and drawn >= 0.9 * total and hits >= 0.5 * total, (hits, drawn, total)
    assert shot["corner"][3] == 0 or total == 0, "nothing is drawn where nobody is"

    # the screenshot: the same pixels, where the page put the canvas on the screen
    image = cv2.imread(str(screenshot))[:, :, ::-1]
    assert image.std() > 10, "the screenshot shows the video"
    left, top, width, height = shot["rect"]
    scale = min(width / shot["size"][0], height / shot["size"][1]) * shot["dpr"]
    ox = left * shot["dpr"] + (width * shot["dpr"] - shot["size"][0] * scale) / 2
    oy = top * shot["dpr"] + (height * shot["dpr"] - shot["size"][1] * scale) / 2
    hits = total = 0
    for pose, points in zip(shot["record"]["poses"], shot["points"]):
        rgb = config["palette"][pose["id"] % len(config["palette"])] if pose["id"] >= 0 else config["untracked"]
        for x, y, visibility, pixel in points:
            sx, sy = int(ox + x * scale), int(oy + y * scale)
            if visibility >= config["min_visibility"] and 0 <= sx < image.shape[1] and 0 <= sy < image.shape[0]:
                total += 1
                hits += all(int(p) >= c - 40 for p, c in zip(image[sy, sx], rgb))  # colour or its white ring
    assert total >= 10 and hits >= 0.8 * total, (hits, total)
    js("window.edgepose.freeze = false")

    def banner() -> str:
        element = browser.find_element("id", "banner")
        return element.text if element.is_displayed() else ""

    assert banner() == ""
    replay.kill()  # the camera is cut
    try:
        wait_for(lambda: "Camera lost" in banner(), 20, "the banner while the camera is lost")
    finally:
        replay.start()
    drawn = js("return window.edgepose.drawn")
    wait_for(lambda: banner() == "", 30, "the banner gone once the camera is back")
    wait_for(lambda: js("return window.edgepose.drawn") > drawn + 5, 30, "frames again")
    assert engine.state == "ok"
    # the page's drawing cost, per frame, in this browser (the kiosk device's, on a Pi)
    mean_ms = js("return window.edgepose.drawMs / window.edgepose.drawn")
    print(f"page: {mean_ms:.2f} ms per frame to draw the skeleton")
    assert np.isfinite(mean_ms)


def test_page_works_with_a_token(browser, kiosk):
    """Opened as /?token=TOKEN, the page carries the token to /config, /video, /ws and /health."""
    from edgepose.live.web import BackgroundServer

    _, engine, _ = kiosk
    wait_for(lambda: engine.state == "ok", 30, "the camera back")
    with BackgroundServer(engine, port=0, token="kiosk-token") as web:
        browser.get(web.url + "/?token=kiosk-token")
        js = browser.execute_script
        wait_for(lambda: js("return window.edgepose.drawn") > 3, 60, "frames drawn")
        wait_for(lambda: js("return window.edgepose.state.latency !== null"), 10, "health polled")
        assert js("return document.getElementById('video').naturalWidth") > 0, "the MJPEG is shown"
        assert not browser.find_element("id", "banner").is_displayed()
        browser.get(web.url + "/")
        assert "401" in browser.find_element("tag name", "body").text


def test_page_comes_back_with_a_restarted_server(browser, kiosk):
    """The service restarts (systemd): the page says the connection is lost, then resumes
    frames and opens the video again, without a reload."""
    from edgepose.live.web import BackgroundServer

    _, engine, _ = kiosk
    wait_for(lambda: engine.state == "ok", 30, "the camera back")
    web = BackgroundServer(engine, port=0).start()
    port = web.port
    browser.get(web.url + "/")
    js = browser.execute_script
    wait_for(lambda: js("return window.edgepose.drawn") > 3, 60, "frames drawn")
    video_src = js("return document.getElementById('video').src")
    web.stop()
    banner = browser.find_element("id", "banner")
    wait_for(lambda: "Connection to edgepose lost" in banner.text, 20, "the banner")
    drawn = js("return window.edgepose.drawn")
    with BackgroundServer(engine, port=port):
        wait_for(lambda: js("return window.edgepose.drawn") > drawn + 3, 30, "frames again")
        wait_for(lambda: not banner.is_displayed(), 10, "the banner gone")
        assert js("return document.getElementById('video').src") != video_src
