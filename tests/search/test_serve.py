"""The search service, through a real uvicorn server on 127.0.0.1 and a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from contrasent import SemanticIndex, SentenceEncoder
from contrasent.search.serve import Limits, create_app

DOCS = ["A cat sleeps on the sofa.", "Stock markets fell sharply today.", "The recipe needs two eggs.",
        "Dogs love to play fetch.", "Interest rates were raised by the central bank."]


@contextmanager
def running(app) -> Iterator[tuple[str, int]]:
    """Serve ``app`` with uvicorn on a free loopback port, in a thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def index(tiny_bert_dir) -> SemanticIndex:
    return SemanticIndex.build(DOCS, SentenceEncoder.from_pretrained(tiny_bert_dir), model_name="tiny-bert",
                               ids=["cat", "stocks", "eggs", "dogs", "rates"])


@pytest.fixture(scope="module")
def address(index) -> Iterator[tuple[str, int]]:
    limits = Limits(max_body_bytes=4096, max_texts=4, max_text_chars=200, max_top_k=20)
    with running(create_app(index, limits)) as address:
        yield address


def call(address, method: str, path: str, body: bytes | dict | None = None, **kwargs) -> tuple[int, object]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"Content-Type": "application/json"}
    connection.request(method, path, body=data, headers=headers, **kwargs)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    is_json = response.getheader("content-type", "").startswith("application/json")
    return response.status, json.loads(raw) if is_json else raw.decode()


def test_health_encode_and_search(address, index) -> None:
    assert call(address, "GET", "/health") == (200, {"status": "ok", "model": "tiny-bert", "documents": 5, "dim": 32})

    status, body = call(address, "POST", "/encode", {"texts": DOCS[:2]})
    assert status == 200 and body["dim"] == 32
    assert np.allclose(body["embeddings"], index.model.encode(DOCS[:2]), atol=1e-6)

    status, body = call(address, "POST", "/search", {"query": DOCS[1], "top_k": 3})
    assert status == 200 and body["query"] == DOCS[1] and len(body["results"]) == 3
    assert body["results"][0] == {"id": "stocks", "score": pytest.approx(1.0, abs=1e-5), "text": DOCS[1]}

    status, body = call(address, "POST", "/search", {"queries": [DOCS[0], DOCS[3]]})
    assert status == 200 and [hits[0]["id"] for hits in body["results"]] == ["cat", "dogs"]
    assert all(len(hits) == 5 for hits in body["results"])  # top_k 10 > 5 documents


def test_page_is_served(address) -> None:
    status, page = call(address, "GET", "/")
    assert status == 200 and '<form id="search-form">' in page and "5 documents, encoded with tiny-bert" in page


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 400, "request body is not valid JSON"),
    (b"[1, 2]", 400, "request body must be a JSON object, got list"),
    (b"\xff\xfe", 400, "request body is not valid JSON"),
    ({"texts": []}, 422, '"texts" must be a non-empty list of strings'),
    ({"texts": "one string"}, 422, '"texts" must be a non-empty list of strings'),
    ({"texts": ["a"] * 5}, 422, '"texts" has 5 items; at most 4 per request'),
    ({"texts": ["a", 7]}, 422, '"texts"[1] must be a string, got int'),
    ({"texts": ["x" * 201]}, 422, '"texts"[0] has 201 characters; at most 200'),
    ({"texts": ["x" * 150] * 4 + ["y" * 4000]}, 413, "request body larger than 4096 bytes"),
])
def test_bad_encode_requests_get_4xx_with_a_message(address, body, status, message) -> None:
    got_status, got = call(address, "POST", "/encode", body)
    assert got_status == status and message in got["detail"]


@pytest.mark.parametrize(("body", "message"), [
    ({"query": "q", "top_k": 0}, "top_k must be an integer from 1 to 20, got 0"),
    ({"query": "q", "top_k": 21}, "top_k must be an integer from 1 to 20, got 21"),
    ({"query": "q", "top_k": "3"}, "top_k must be an integer from 1 to 20, got '3'"),
    ({"top_k": 3}, 'send either "query" (a string) or "queries" (a list of strings)'),
    ({"query": "q", "queries": ["q"]}, 'send either "query"'),
    ({"query": ["q"]}, '"query" must be a string of 1 to 200 characters'),
    ({"query": ""}, '"query" must be a string of 1 to 200 characters'),
    ({"queries": ["q"] * 5}, '"queries" has 5 items; at most 4 per request'),
])
def test_bad_search_requests_get_422_with_a_message(address, body, message) -> None:
    status, got = call(address, "POST", "/search", body)
    assert status == 422 and message in got["detail"]


def test_oversized_chunked_body_is_refused_and_the_server_keeps_serving(address) -> None:
    chunks = iter([b'{"texts": ["', b"x" * 3000, b"y" * 3000, b'"]}'])  # no Content-Length
    status, body = call(address, "POST", "/encode", chunks, encode_chunked=True)
    assert status == 413 and body["detail"] == "request body larger than 4096 bytes"
    assert call(address, "GET", "/health")[0] == 200


def test_concurrent_searches_are_all_answered(address) -> None:
    results: list[tuple[int, object]] = []
    threads = [threading.Thread(target=lambda q=q: results.append(call(address, "POST", "/search", {"query": q})))
               for q in DOCS * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in results) == [200] * 10
