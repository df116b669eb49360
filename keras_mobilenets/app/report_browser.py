"""Opens a report in headless Chromium, as a reader would: do its images load, does it log errors; screenshots.

Chromium is driven with Playwright (the `playwright` package) on the
system's Chromium (Debian's `chromium`), never a browser Playwright would
download: nothing here needs the network. Playwright rather than Chromium's
own --screenshot: that one cannot run a check in the page (image widths),
report console errors, or know the page's height for a whole-page shot.
"""
import shutil
import tempfile
from pathlib import Path

from keras_mobilenets.files import save_atomically

# Offline and quiet: no first-run pages, no update or sync traffic; root needs --no-sandbox.
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")
IMAGE_WIDTHS = "Array.from(document.images, image => [image.alt, image.complete ? image.naturalWidth : 0])"


def chromium():
    """The system's Chromium executable (FileNotFoundError naming the package when there is none)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no Chromium found (chromium, chromium-browser or google-chrome on PATH); "
                            "on Debian: apt-get install chromium")


def look_at(html_path, screenshots=(), *, executable=None):
    """Open `html_path` and report what a reader would meet; take `screenshots` (path, width, height).

    A height of None shoots the whole page at that width. Returns {"images":
    [(alt, natural width)], "console_errors": [...], "page_widths": [(screen
    width, page width)], "problems": [...]}, problems being every image that
    did not load, every console or page error, and every screen width the
    page does not fit in (a reader would have to scroll the whole page sideways).
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise ImportError("looking at a report needs the playwright package: pip install playwright "
                          "(it uses the system's Chromium; no browser download)") from error
    executable = executable or chromium()
    errors = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS),
            viewport={"width": 1280, "height": 900})
        try:
            page = browser.new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(Path(html_path).resolve().as_uri(), wait_until="load")
            images = [tuple(pair) for pair in page.evaluate(IMAGE_WIDTHS)]
            widths = []
            for path, width, height in screenshots:
                page.set_viewport_size({"width": width, "height": height or 900})
                widths.append((width, page.evaluate("document.documentElement.scrollWidth")))
                save_atomically(path, lambda temporary: page.screenshot(path=str(temporary), full_page=height is None))
        finally:
            browser.close()
    problems = [f"image did not load: {alt}" for alt, width in images if width <= 0]
    problems += [f"console error: {error}" for error in errors]
    problems += [f"the page is {page_width} px wide on a {width} px screen" for width, page_width in widths
                 if page_width > width]
    return {"images": images, "console_errors": errors, "page_widths": widths, "problems": problems}
