"""`contrasent search` and `contrasent serve`: the command line, and the page in a real browser.

The browser test drives the system's Chromium (headless, through Selenium and chromedriver) against
``contrasent serve`` started as a user would start it. Without Chromium it is skipped, except in CI
(``CI=true``), where it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from contrasent.cli import build_parser, main


@pytest.fixture(scope="module")
def corpus(scifact_head) -> Path:
    """The first 50 SciFact documents, as a BEIR corpus.jsonl (in a temporary folder)."""
    return scifact_head(50)


def test_search_prints_ranked_results_and_caches_the_index(tiny_bert_dir, corpus, tmp_path, capsys) -> None:
    first_doc = json.loads(corpus.read_text().splitlines()[0])
    query = f"{first_doc['title']} {first_doc['text']}"  # the document itself, as the index holds it
    argv = ["search", str(tiny_bert_dir), "--corpus", str(corpus), "--index", str(tmp_path / "idx"),
            "--top-k", "3", query, "cell biology"]
    main(argv)
    out = capsys.readouterr()
    assert "encoding 50 documents" in out.err and "saved the index" in out.err
    assert "50/50" in out.err and "text/s" in out.err  # the encoding's progress bar, whatever the terminal
    lines = out.out.splitlines()
    assert lines[0] == f"query: {query}"
    assert lines[1].startswith("  1. 1.0000  [4983] Microstructural development")
    assert len(lines) == 8  # two queries, three hits each
    assert (tmp_path / "idx" / "index.json").is_file()

    main([*argv[:-2], "--json", "cell biology"])  # from the cached index
    out = capsys.readouterr()
    assert "encoding" not in out.err
    record = json.loads(out.out)
    assert record["query"] == "cell biology" and len(record["results"]) == 3


def test_search_errors_are_one_line(tiny_bert_dir, corpus, tmp_path, capsys) -> None:
    assert main(["search", str(tiny_bert_dir), "--corpus", str(tmp_path / "missing.jsonl"), "q"]) == 1
    assert "contrasent search: error: corpus file" in capsys.readouterr().err

    other = tmp_path / "other.txt"
    other.write_text("just one line\n")
    assert main(["search", str(tiny_bert_dir), "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "q"]) == 0
    capsys.readouterr()
    assert main(["search", str(tiny_bert_dir), "--corpus", str(other), "--index", str(tmp_path / "idx"), "q"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]  # after the model's loading messages: one line
    assert last.startswith("contrasent search: error: the index in") and "built from another corpus" in last
    assert last.endswith("delete it or pass another --index")


def test_serve_without_its_extra_is_a_user_error(monkeypatch, tiny_bert_dir, corpus, capsys) -> None:
    monkeypatch.setitem(sys.modules, "contrasent.search.serve", None)  # importing it raises ImportError
    assert main(["serve", str(tiny_bert_dir), "--corpus", str(corpus)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("contrasent serve: error: contrasent serve needs fastapi and uvicorn: pip install")
    assert err.count("\n") == 1


def test_serve_binds_to_loopback_by_default() -> None:
    args = build_parser().parse_args(["serve", "model", "--corpus", "c.jsonl"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def test_page_in_a_browser_shows_results(tiny_bert_dir, corpus, tmp_path, serving) -> None:
    paths = chromium_paths()
    if paths is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromedriver are required in CI (apt-get install chromium chromium-driver)")
        pytest.skip("chromium/chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    url, health = serving(str(tiny_bert_dir), "--corpus", str(corpus))
    assert health["documents"] == 50

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,800"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=paths[1]), options=options)
    try:
        browser.get(url)
        assert "50 documents" in browser.find_element(By.CLASS_NAME, "about").text
        box = browser.find_element(By.ID, "query")
        box.send_keys("diffusion tensor imaging of the newborn brain")
        top_k = browser.find_element(By.ID, "top-k")
        top_k.clear()
        top_k.send_keys("5")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 30).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#results li.result")))
        items = browser.find_elements(By.CSS_SELECTOR, "#results li.result")
        assert len(items) == 5
        scores = [float(item.find_element(By.CLASS_NAME, "score").text) for item in items]
        assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
        assert all(item.find_element(By.CLASS_NAME, "text").text for item in items)
        assert browser.find_element(By.ID, "status").text == ""
        browser.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        browser.quit()


def test_search_prompt_flags_reach_the_index(tiny_bert_dir, corpus, tmp_path, capsys) -> None:
    argv = ["search", str(tiny_bert_dir), "--corpus", str(corpus), "--index", str(tmp_path / "idx"),
            "--document-prompt", "passage: ", "--query-prompt", "query: ", "--no-progress", "cell biology"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "idx" / "index.json").read_text())["document_prompt"] == "passage: "
    capsys.readouterr()
    assert main([*argv[:6], "--no-progress", "cell biology"]) == 1  # the cached index: another document prompt
    assert "built with the document prompt 'passage: '" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv[:4], "--query-prompt", "q: ", "--query-prompt-name", "query", "x"])
