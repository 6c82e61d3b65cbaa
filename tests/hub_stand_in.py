"""A local stand-in for the Hugging Face Hub's HTTP API: a real HTTP server on 127.0.0.1 implementing the
four endpoints ``create_repo`` and ``upload_folder`` call (see ``tests/models/test_hub.py``).

``hub_server(folder)`` starts it; committed files land under ``folder / repo_id``. Point
``huggingface_hub`` at it with ``HF_ENDPOINT=http://host:port``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class HubStandIn(BaseHTTPRequestHandler):
    """Records every request; writes committed files under ``server.repos / repo_id``."""

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.calls.append(("GET", self.path, None))
        self._reply(404, {"error": "not implemented by the stand-in"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.calls.append(("POST", self.path.split("?")[0], self.headers.get("Authorization")))
        endpoint = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["api", "repos", "create"]:
            payload = json.loads(body)
            self.server.created.append(payload)
            self._reply(200, {"url": f"{endpoint}/{payload['organization']}/{payload['name']}"})
        elif parts == ["api", "validate-yaml"]:
            from huggingface_hub import ModelCard

            try:
                ModelCard(json.loads(body)["content"], ignore_metadata_errors=False)
            except ValueError as error:
                self._reply(400, {"errors": [{"message": str(error)}]})
                return
            self.server.validated += 1
            self._reply(200, {"errors": [], "warnings": []})
        elif parts[:2] == ["api", "models"] and parts[4] == "preupload":
            files = json.loads(body)["files"]
            self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                        for f in files]})
        elif parts[:2] == ["api", "models"] and parts[4] == "commit":
            repo = self.server.repos / parts[2] / parts[3]
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            assert lines[0]["key"] == "header"
            self.server.messages.append(lines[0]["value"]["summary"])
            for line in lines[1:]:
                assert line["key"] == "file", line  # only the regular path is implemented
                target = repo / line["value"]["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(line["value"]["content"]))
            self._reply(200, {"commitUrl": f"{endpoint}/{parts[2]}/{parts[3]}/commit/{'a' * 40}",
                              "commitOid": "a" * 40})
        else:
            self._reply(404, {"error": f"not implemented by the stand-in: {self.path}"})


@contextmanager
def hub_server(repos: Path) -> Iterator[ThreadingHTTPServer]:
    """The stand-in, serving in a thread; ``server.calls``, ``created``, ``messages``, ``validated`` record
    what it was asked."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubStandIn)
    server.calls, server.created, server.messages, server.repos = [], [], [], repos
    server.validated = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
