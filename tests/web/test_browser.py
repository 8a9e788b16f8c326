"""The upload page in a real browser: headless Chromium driven by Playwright against ``genderclass serve``.

Needs the Debian ``chromium`` package at /usr/bin/chromium and the ``playwright`` Python package (its
own browser download, ``playwright install``, is never used). Skipped cleanly when either is missing.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.request import urlopen

import pytest
from webcorpus import encode, face_photo, jpeg_bytes, photo

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
LABELS = ("male", "female", "uncertain")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_upload_page_renders_results_and_errors(browser, live_server, tmp_path):
    from PIL import Image
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []

    def on_console(msg) -> None:
        # The browser logs every non-2xx fetch; the 415 for the non-image below is expected.
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            problems.append(msg.text)

    def on_request(request) -> None:
        if not request.url.startswith((live_server, "blob:" + live_server, "data:")):
            problems.append(f"request off this server: {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("request", on_request)

    page.goto(live_server + "/")
    expect(page.locator("h1")).to_have_text("genderclass")
    expect(page.locator("#model-line")).to_contain_text("test accuracy")
    expect(page.get_by_text("What this is and is not for")).to_be_visible()
    expect(page.locator("#card-link")).to_have_attribute("href", "/model-card/face")
    # accuracy by group, one table per attribute, as the model's metadata measured it
    with urlopen(live_server + "/api/v1/models") as response:
        face_info = {m["modality"]: m for m in json.load(response)["models"]}["face"]["info"]
    if face_info["test_groups"]:
        page.locator("#groups summary").click()
        attribute, rows = next(iter(face_info["test_groups"].items()))
        table = page.locator("#group-tables table").first
        expect(table.locator("caption")).to_have_text(attribute.replace("_", " "))
        expect(table.locator("tbody tr")).to_have_count(len(rows))
        expect(table.locator("tbody tr").first).to_contain_text(f"{100 * rows[0]['accuracy']:.1f}%")
    else:
        expect(page.locator("#groups")).to_be_hidden()

    # 1. Two photos at once, face detection on: one with a (cartoon) face, one without.
    face_jpg, street_jpg = tmp_path / "portrait.jpg", tmp_path / "street.jpg"
    face_jpg.write_bytes(encode(Image.fromarray(face_photo(640, 480, seed=2)), "JPEG", quality=90))
    street_jpg.write_bytes(jpeg_bytes(640, 480, seed=5))
    page.set_input_files("#file-input", [str(face_jpg), str(street_jpg)])
    cards = page.locator(".card")
    expect(cards).to_have_count(2)
    for index in range(2):
        expect(cards.nth(index).locator(".badge")).not_to_have_text("Analysing", timeout=30_000)
    for index in range(2):
        card = cards.nth(index)
        if "no face" in card.locator(".badge").inner_text().lower():
            expect(card.locator(".message")).to_contain_text("No face was found")
            continue
        labels = card.locator(".face-label").all_inner_texts()
        assert labels and all(any(name in t.lower() for name in LABELS) for t in labels), labels
        expect(card.locator(".bar-fill").first).to_be_visible()
        expect(card.locator(".face-meta").first).to_contain_text("p(female)")
    face_card = cards.nth(0)
    expect(face_card.locator(".face-row")).to_have_count(1)  # the drawn face is found
    assert face_card.locator("canvas").evaluate("c => c.width") == 640

    # 2. Detection off: the whole image is classified as one face.
    page.locator("label[for=detect]").click()
    expect(page.locator("#detect")).not_to_be_checked()
    crop = tmp_path / "face-crop.png"
    crop.write_bytes(encode(Image.fromarray(photo(320, 320, seed=9)), "PNG"))
    page.set_input_files("#file-input", str(crop))
    expect(cards.nth(2).locator(".face-row")).to_have_count(1, timeout=30_000)
    page.locator("label[for=detect]").click()  # back on, as a visitor would leave it

    # 2b. Fingerprints: the model line quotes balanced accuracy, the bar marks the model's own threshold.
    with urlopen(live_server + "/api/v1/models") as response:
        models = {m["modality"]: m for m in json.load(response)["models"]}
    if "fingerprint" in models:
        page.locator("label[for=modality-fingerprint]").click()
        expect(page.locator("#model-line")).to_contain_text("test balanced accuracy per print")
        print_png = tmp_path / "print.png"
        print_png.write_bytes(encode(Image.fromarray(photo(96, 103, seed=4)), "PNG"))
        page.set_input_files("#file-input", str(print_png))
        row = cards.nth(3).locator(".face-row")
        expect(row).to_have_count(1, timeout=30_000)
        threshold = models["fingerprint"]["info"]["threshold"]
        left = row.locator(".bar-mid").evaluate("el => el.style.left")
        assert float(left.rstrip("%")) == round(100 * threshold, 1), (left, threshold)  # "54.0%" reads back "54%"
        fingers = models["fingerprint"]["info"]["fingers"]
        if not fingers:
            expect(page.locator("#finger-row")).to_be_hidden()
        else:  # the finger known: decided, and marked, at the per-finger calibration's threshold
            expect(page.locator("#finger-row")).to_be_visible()
            page.locator("#finger").select_option("thumb")
            page.set_input_files("#file-input", str(print_png))
            row = cards.nth(4).locator(".face-row")
            expect(row.locator(".face-meta")).to_contain_text("thumb calibration", timeout=30_000)
            left = row.locator(".bar-mid").evaluate("el => el.style.left")
            assert float(left.rstrip("%")) == round(100 * models["fingerprint"]["info"]["finger_threshold"], 1), left
            page.locator("#finger").select_option("")
        # One person's prints: one request, a card per print and one for the person, first.
        before = cards.count()
        page.locator("label[for=fuse]").click()
        second = tmp_path / "print2.png"
        second.write_bytes(encode(Image.fromarray(photo(96, 103, seed=6)), "PNG"))
        page.set_input_files("#file-input", [str(print_png), str(second)])
        expect(cards).to_have_count(before + 3)
        person = cards.nth(before)
        expect(person.locator(".card-title")).to_have_text("One person (2 prints)")
        expect(person.locator(".badge")).to_have_text(re.compile("Person|Uncertain"), timeout=30_000)
        expect(person.locator(".message")).to_contain_text("Fused 2 distinct prints")
        expect(person.locator(".face-row")).to_have_count(1)
        left = person.locator(".bar-mid").evaluate("el => el.style.left")
        assert float(left.rstrip("%")) == round(100 * threshold, 1), (left, threshold)
        for index in (before + 1, before + 2):
            expect(cards.nth(index).locator(".face-row")).to_have_count(1, timeout=30_000)
        if fingers:  # every print's finger named: the person is decided, and marked, as each print is
            page.locator("#finger").select_option("thumb")
            page.set_input_files("#file-input", [str(print_png), str(second)])
            expect(cards).to_have_count(before + 6)
            person = cards.nth(before + 3)
            expect(person.locator(".face-row")).to_have_count(1, timeout=30_000)
            left = person.locator(".bar-mid").evaluate("el => el.style.left")
            assert float(left.rstrip("%")) == round(100 * models["fingerprint"]["info"]["finger_threshold"], 1), left
            page.locator("#finger").select_option("")
        # one print as one person: counted in the singular
        before = cards.count()
        page.set_input_files("#file-input", [str(print_png)])
        expect(cards).to_have_count(before + 2)
        expect(cards.nth(before).locator(".card-title")).to_have_text("One person (1 print)")
        expect(cards.nth(before).locator(".message")).to_contain_text("Fused 1 distinct print ", timeout=30_000)
        page.locator("label[for=fuse]").click()
        page.locator("label[for=modality-face]").click()
        expect(page.locator("#finger-row")).to_be_hidden()
        expect(page.locator("#person-row")).to_be_hidden()

    # 3. A non-image, chosen with the keyboard only: focus the drop zone, press Enter.
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not an image\n")
    chooser = None
    for _attempt in range(3):  # headless Chromium occasionally drops one key-opened chooser under load
        page.locator("#dropzone").focus()
        expect(page.locator("#dropzone")).to_be_focused()
        try:
            with page.expect_file_chooser(timeout=10_000) as opened:
                page.keyboard.press("Enter")
            chooser = opened.value
            break
        except PlaywrightTimeoutError:
            continue
    assert chooser is not None, "Enter on the focused drop zone never opened the file chooser"
    chooser.set_files(str(notes))
    fingerprint_cards = 0 if "fingerprint" not in models else 6 + 4 * bool(models["fingerprint"]["info"]["fingers"])
    error_card = cards.nth(3 + fingerprint_cards)
    expect(error_card).to_have_class("card is-error", timeout=30_000)
    expect(error_card.locator(".badge")).to_have_text("Error")
    expect(error_card.locator(".message")).to_contain_text("not a supported image")

    # 4. A file that fits the body limit only without its multipart framing: refused before sending.
    limit = json.load(urlopen(live_server + "/api/v1/models"))["limits"]["max_upload_bytes"]
    expect(page.locator("#limits-text")).to_contain_text("per request")
    near = tmp_path / "near-limit.jpg"
    near.write_bytes(b"\xff" * (limit - 100))
    page.set_input_files("#file-input", str(near))
    near_card = cards.nth(4 + fingerprint_cards)
    expect(near_card).to_have_class("card is-error", timeout=30_000)
    expect(near_card.locator(".message")).to_contain_text("upload limit")

    assert page.locator("#results").get_attribute("aria-live") == "polite"
    page.keyboard.press("Tab")  # focus moves on, visibly
    assert not problems, problems

    screenshot = tmp_path / "web-screenshot.png"
    page.screenshot(path=str(screenshot), full_page=True)
    artifacts = REPO_ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, artifacts / "web-screenshot.png")
    page.close()
