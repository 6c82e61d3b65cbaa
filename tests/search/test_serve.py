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


# The server answering 500 (issue #15, class 7): each of these is the client's mistake, so a 4xx naming it.
NESTED = b"[" * 100_000
HUGE_TOP_K = b'{"query": "q", "top_k": ' + b"9" * 5000 + b"}"


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/search", b'{"query": "abc\\ud800"}', 422, '"query" holds a lone surrogate U+D800 at character 3'),
    ("/search", b'{"queries": ["ok", "\\udc00x"]}', 422, '"queries"[1] holds a lone surrogate U+DC00 at character 0'),
    ("/encode", b'{"texts": ["abc\\ud800"]}', 422, '"texts"[0] holds a lone surrogate U+D800 at character 3'),
    ("/search", NESTED, 400, "request body is nested too deeply"),
    ("/encode", NESTED, 400, "request body is nested too deeply"),
    ("/encode", b'{"texts": ["a"], "x": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, 400, "nested too deeply"),
    ("/search", HUGE_TOP_K, 400, "request body holds an integer of 5000 digits"),
    ("/search", b'{"query": "q", "top_k": -' + b"9" * 5000 + b"}", 400, "an integer of 5000 digits"),
    ("/search", b'{"query": "q", "top_k": NaN}', 400, "request body is not valid JSON: NaN is not a JSON value"),
    ("/search", b'{"query": "q", "top_k": Infinity}', 400, "Infinity is not a JSON value"),
    ("/encode", b'{"texts": ["a"], "x": -Infinity}', 400, "-Infinity is not a JSON value"),
    ("/search", b'{"query": "q", "top_k": 1e400}', 422, "top_k must be an integer from 1 to 100, got inf"),
    ("/search", b'{"query": "q", "top_k": 3.0}', 422, "top_k must be an integer from 1 to 100, got 3.0"),
    ("/search", b'{"query": "q", "top_k": null}', 422, "top_k must be an integer from 1 to 100, got None"),
    ("/search", b'{"query": "q", "top_k": false}', 422, "top_k must be an integer from 1 to 100, got False"),
    ("/search", b'{"query": "   "}', 422, '"query" is empty or only whitespace'),
    ("/search", b'{"query": "\\u200b\\u0000"}', 422, '"query" is empty or only whitespace'),
    ("/search", b'{"queries": ["q", "\\n\\t"]}', 422, '"queries"[1] is empty or only whitespace'),
    ("/search", b'{"query": 7}', 422, '"query" must be a string of 1 to 10000 characters'),
    ("/search", b'{"query": {"nested": "object"}}', 422, '"query" must be a string'),
    ("/search", b'{"queries": [["q"]]}', 422, '"queries"[0] must be a string, got list'),
    ("/encode", b'{"texts": [true]}', 422, '"texts"[0] must be a string, got bool'),
    ("/encode", b'{"texts": [1.5]}', 422, '"texts"[0] must be a string, got float'),
    ("/encode", b'{"texts": {"a": "b"}}', 422, '"texts" must be a non-empty list of strings'),
    ("/encode", b"", 400, "request body is not valid JSON"),
    ("/encode", b"null", 400, "request body must be a JSON object, got NoneType"),
    ("/encode", b'"texts"', 400, "request body must be a JSON object, got str"),
])
def test_what_used_to_be_a_500_is_a_4xx_with_a_message(default_address, path, body, status, message) -> None:
    got_status, got = call(default_address, "POST", path, body)
    assert (got_status, message in got["detail"]) == (status, True), got
    assert call(default_address, "GET", "/health")[0] == 200  # and the server keeps serving


@pytest.fixture(scope="module")
def default_address(index) -> Iterator[tuple[str, int]]:
    """The service with its default limits (1 MB bodies), as ``contrasent serve`` starts it."""
    with running(create_app(index)) as address:
        yield address


def test_blank_texts_are_encoded_but_not_searched(default_address) -> None:
    status, body = call(default_address, "POST", "/encode", {"texts": [" ", ""]})
    assert status == 200 and len(body["embeddings"]) == 2  # the encoder's business: blank texts embed


def test_searching_an_empty_index_is_a_409(tiny_bert_dir) -> None:
    empty = SemanticIndex(SentenceEncoder.from_pretrained(tiny_bert_dir))
    with running(create_app(empty)) as address:
        status, body = call(address, "POST", "/search", {"query": "anything"})
        assert status == 409 and body["detail"] == "the index holds no documents: there is nothing to search"
        assert call(address, "POST", "/encode", {"texts": ["still encodes"]})[0] == 200


def test_an_unexpected_failure_is_a_500_with_a_message(index, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("the model fell over")

    with running(create_app(index)) as address:
        monkeypatch.setattr(index, "search", broken)
        status, body = call(address, "POST", "/search", {"query": "q"})
    assert status == 500 and body == {"detail": "internal error: RuntimeError: the model fell over"}


@pytest.mark.parametrize("field", ["max_body_bytes", "max_texts", "max_text_chars", "max_top_k"])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_limits_must_be_positive_integers(field, value) -> None:
    with pytest.raises(ValueError, match=rf"Limits.{field} must be a positive integer, got {value!r}"):
        Limits(**{field: value})


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
