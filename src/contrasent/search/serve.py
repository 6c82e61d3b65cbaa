"""An HTTP search service over a :class:`~contrasent.SemanticIndex` (FastAPI app, served by uvicorn).

Endpoints (JSON in and out; errors are ``{"detail": message}`` with a 4xx status):

=================  =========================================================================================
``GET /``          a page: type a query, see the top results with their scores
``GET /health``    ``{"status": "ok", "model", "documents", "dim"}``
``POST /encode``   ``{"texts": [str, ...]}`` -> ``{"embeddings": [[float, ...], ...], "dim"}``
``POST /search``   ``{"query": str, "top_k": 10}`` -> ``{"query", "results": [{"id", "score", "text"}, ...]}``;
                   or ``{"queries": [str, ...], "top_k"}`` -> ``{"results": [[...], ...]}``
=================  =========================================================================================

Requests are bounded (:class:`Limits`): body bytes (413), texts per request, characters per text and
``top_k`` (422). A body that is not strict JSON (``NaN``, ``Infinity``), nested too deeply or holding an
integer too long to read gets a 400; a text that is not valid Unicode (a lone surrogate such as
``"\\ud800"``) or a query of whitespace only a 422; a search of an empty index a 409. Each with
``{"detail": message}``; an unexpected failure is a 500 with its message. The model runs in a worker
thread, one request at a time (a lock): concurrent forward passes on the same CPU cores only compete
for them.

Requires the ``serve`` extra: ``pip install 'contrasent[serve]'`` (fastapi, uvicorn).
"""

from __future__ import annotations

import html
import json
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from contrasent.search.text_checks import check_text

if TYPE_CHECKING:
    from contrasent.search.index import SemanticIndex

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# digits of the longest integer a request may hold: any field's bound has fewer; Python would refuse
# beyond 4300 with a ValueError of its own (and spend quadratic time getting there)
_MAX_INTEGER_DIGITS = 20


@dataclass(frozen=True)
class Limits:
    """Bounds on one request.

    Attributes:
        max_body_bytes: request body size (larger: 413).
        max_texts: texts in ``/encode``, queries in ``/search``.
        max_text_chars: characters per text or query.
        max_top_k: largest ``top_k``.
    """

    max_body_bytes: int = 1_000_000
    max_texts: int = 64
    max_text_chars: int = 10_000
    max_top_k: int = 100

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")


class RequestError(Exception):
    """A client error: becomes a JSON ``{"detail": message}`` response with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(index: SemanticIndex, limits: Limits | None = None) -> FastAPI:
    """The FastAPI application serving ``index`` (see the module docstring for the endpoints)."""
    limits = limits or Limits()
    model_lock = threading.Lock()
    app = FastAPI(title="contrasent search", docs_url=None, redoc_url=None, openapi_url=None)
    page = _page(index)

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status)

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, error: Exception) -> JSONResponse:
        # still a 500 (the server's fault, logged with its traceback by uvicorn), but with a message
        return JSONResponse({"detail": f"internal error: {type(error).__name__}: {error}"}, status_code=500)

    def locked(function: Any, *args: Any) -> Any:
        with model_lock:
            return function(*args)

    @app.get("/", response_class=HTMLResponse)
    async def home() -> str:
        return page

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": index.model_name, "documents": len(index), "dim": index.dim}

    @app.post("/encode")
    async def encode(request: Request) -> dict[str, Any]:
        body = await _read_json(request, limits)
        texts = _texts(body, "texts", limits, blank_ok=True)
        embeddings = await run_in_threadpool(locked, index.model.encode, texts)
        return {"embeddings": embeddings.tolist(), "dim": int(embeddings.shape[1])}

    @app.post("/search")
    async def search(request: Request) -> dict[str, Any]:
        body = await _read_json(request, limits)
        top_k = body.get("top_k", 10)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= limits.max_top_k:
            raise RequestError(422, f"top_k must be an integer from 1 to {limits.max_top_k}, got {top_k!r}")
        if ("query" in body) == ("queries" in body):
            raise RequestError(422, 'send either "query" (a string) or "queries" (a list of strings)')
        if len(index) == 0:
            raise RequestError(409, "the index holds no documents: there is nothing to search")
        if "query" in body:
            query = body["query"]
            if not isinstance(query, str) or not 0 < len(query) <= limits.max_text_chars:
                raise RequestError(422, f'"query" must be a string of 1 to {limits.max_text_chars} characters')
            _checked('"query"', query)
            hits = await run_in_threadpool(locked, index.search, query, top_k)
            return {"query": query, "results": [hit._asdict() for hit in hits]}
        queries = _texts(body, "queries", limits)
        results = await run_in_threadpool(locked, index.search, queries, top_k)
        return {"results": [[hit._asdict() for hit in hits] for hits in results]}

    return app


async def _read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """The request's JSON object, reading at most ``max_body_bytes`` (413 beyond, 400 if not strict JSON)."""
    too_large = RequestError(413, f"request body larger than {limits.max_body_bytes} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared[:20]) > limits.max_body_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():  # also bounds bodies sent without a Content-Length
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise too_large
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except RecursionError:
        raise RequestError(400, "request body is nested too deeply to be a request") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RequestError(400, f"request body is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise RequestError(400, f"request body must be a JSON object, got {type(value).__name__}")
    return value


def _refuse_constant(name: str) -> None:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259), though Python reads them."""
    raise RequestError(400, f"request body is not valid JSON: {name} is not a JSON value")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INTEGER_DIGITS:
        raise RequestError(400, f"request body holds an integer of {len(digits.lstrip('-'))} digits; no field takes "
                                f"more than {_MAX_INTEGER_DIGITS}")
    return int(digits)


def _texts(body: dict[str, Any], field: str, limits: Limits, *, blank_ok: bool = False) -> list[str]:
    """``body[field]`` as a non-empty, bounded list of valid strings (422 with the reason otherwise);
    blank strings only when ``blank_ok`` (``/encode``: a search needs something to search for)."""
    texts = body.get(field)
    if not isinstance(texts, list) or not texts:
        raise RequestError(422, f'"{field}" must be a non-empty list of strings')
    if len(texts) > limits.max_texts:
        raise RequestError(422, f'"{field}" has {len(texts)} items; at most {limits.max_texts} per request')
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(422, f'"{field}"[{position}] must be a string, got {type(text).__name__}')
        if len(text) > limits.max_text_chars:
            raise RequestError(
                422, f'"{field}"[{position}] has {len(text)} characters; at most {limits.max_text_chars}')
        _checked(f'"{field}"[{position}]', text, blank_ok=blank_ok)
    return texts


def _checked(name: str, text: str, *, blank_ok: bool = False) -> None:
    """422 for a text that is not valid Unicode or, unless ``blank_ok``, blank (the rules of
    :func:`contrasent.search.text_checks.check_text`, shared with the Python API and the CLI)."""
    try:
        check_text(text, name, blank_ok=blank_ok)
    except ValueError as error:
        raise RequestError(422, str(error)) from None


def serve(index: SemanticIndex, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None) -> None:
    """Serve ``index`` with uvicorn until interrupted. Binds to loopback unless told otherwise."""
    import uvicorn

    if host not in LOOPBACK_HOSTS:
        print(f"warning: serving on {host}: the service has no authentication; anyone who can reach "
              f"this address can use it", file=sys.stderr)
    uvicorn.run(create_app(index, limits), host=host, port=port, log_level="info")


def _page(index: SemanticIndex) -> str:
    name = html.escape(index.model_name or "a sentence encoder")
    return _PAGE.replace("{{model}}", name).replace("{{documents}}", f"{len(index):,}")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>contrasent search</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  .about { color: #666; margin-top: 0; font-size: .9rem; word-break: break-all; }
  form { display: flex; gap: .5rem; margin: 1rem 0; }
  input[type=search] { flex: 1; font-size: 1rem; padding: .5rem; }
  button { font-size: 1rem; padding: .5rem 1rem; }
  ol { padding-left: 1.5rem; }
  li { margin-bottom: .8rem; }
  .score { font-family: monospace; background: #eef; padding: 0 .3rem; border-radius: 3px; }
  .id { color: #888; font-size: .85rem; }
  .text { display: block; margin-top: .2rem; }
  #status { color: #a00; }
</style>
</head>
<body>
<h1>Semantic search</h1>
<p class="about">{{documents}} documents, encoded with {{model}}</p>
<form id="search-form">
  <input id="query" type="search" name="query" placeholder="Type a query" autofocus required maxlength="10000">
  <label>top <input id="top-k" type="number" min="1" max="100" value="10" style="width:4rem"></label>
  <button type="submit">Search</button>
</form>
<p id="status" role="status"></p>
<ol id="results"></ol>
<script>
const form = document.getElementById("search-form");
const results = document.getElementById("results");
const status = document.getElementById("status");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  status.textContent = "";
  const query = document.getElementById("query").value;
  const topK = parseInt(document.getElementById("top-k").value, 10) || 10;
  try {
    const response = await fetch("/search", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({query: query, top_k: topK}),
    });
    const body = await response.json();
    if (!response.ok) { status.textContent = body.detail || response.statusText; return; }
    results.replaceChildren(...body.results.map((hit) => {
      const item = document.createElement("li");
      item.className = "result";
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = hit.score.toFixed(3);
      const id = document.createElement("span");
      id.className = "id";
      id.textContent = " " + hit.id;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = hit.text.length > 400 ? hit.text.slice(0, 400) + "…" : hit.text;
      item.append(score, id, text);
      return item;
    }));
  } catch (error) {
    status.textContent = "Search failed: " + error;
  }
});
</script>
</body>
</html>
"""
