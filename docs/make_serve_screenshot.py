"""The README's picture of the page of ``labelgraph serve``: serve a demo model, upload two test scenes (those of the
first 40 with the most predicted labels) in a headless Chromium, save ``docs/serve.png``.

    python docs/make_serve_screenshot.py [demo_out/add_gcn/model] [docs/serve.png]

Needs ``labelgraph demo`` to have run (the model and its test images) and Debian's chromium + chromium-driver.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from labelgraph.apis import Predictor
from labelgraph.serving.process import ServerProcess


def main(model_dir: str = "demo_out/add_gcn/model", out: str = "docs/serve.png") -> None:
    candidates = sorted(Path(model_dir).parents[1].glob("data/images/test/*.png"))[:40]
    tagged = Predictor.load(model_dir).predict(candidates)["predictions"]
    scenes = [Path(p["image"]) for p in sorted(tagged, key=lambda p: -len(p["labels"]))[:2]]  # the busiest scenes
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    profile = tempfile.mkdtemp()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1100,1250", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(flag)
    with ServerProcess(model_dir, "--quiet") as server:
        driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
        try:
            driver.get(server.url + "/")
            WebDriverWait(driver, 30).until(lambda d: "classes" in d.find_element(By.ID, "model").text)
            for scene in reversed(scenes):  # the newest card goes on top
                driver.find_element(By.ID, "file-input").send_keys(str(scene.resolve()))
                WebDriverWait(driver, 60).until(
                    lambda d: not d.find_elements(By.CSS_SELECTOR, '.result[data-state="pending"]')
                )
            driver.save_screenshot(out)
        finally:
            driver.quit()
    image = Image.open(out).convert("RGB")
    image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS).quantize(128).save(out, optimize=True)
    print(f"wrote {out} ({Path(out).stat().st_size // 1024} kB) from {[s.name for s in scenes]}")


if __name__ == "__main__":
    main(*sys.argv[1:])
