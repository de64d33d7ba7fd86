"""A local stand-in for the HF hub (``HF_ENDPOINT=http://127.0.0.1:PORT``) that records every request.

Serves the two calls ``huggingface_hub`` makes: the repository listing (``/api/models/ORG/NAME``, with
file sizes) and file downloads (``HEAD``/``GET /ORG/NAME/resolve/REV/FILE``). Anything else is a 404 and
is recorded too, so a test can assert the exact set of requests (or that there were none).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:  # quiet
                pass

            def _route(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((self.command, path))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    repo = "/".join(parts[2:4])
                    files = hub.repos.get(repo)
                    if files is None:
                        return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)
                    data = {"id": repo, "modelId": repo, "sha": SHA, "private": False, "siblings": [
                        {"rfilename": f, "size": len(b), "blobId": hashlib.sha1(b).hexdigest()} for f, b in files.items()]}
                    return self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, body)
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                    content = hub.repos.get(repo, {}).get(name)
                    if content is None:
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, body)
                    return self._send(200, content, {"X-Repo-Commit": SHA, "ETag": f'"{hashlib.sha1(content).hexdigest()}"',
                                                     "Content-Type": "application/octet-stream"}, body)
                return self._send(404, b"", {}, body)

            def _send(self, code: int, content: bytes, headers: dict[str, str], body: bool) -> None:
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if body:
                    self.wfile.write(content)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self._route(True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._route(False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def downloaded(self) -> set[str]:
        """File names fetched (GET of a resolve URL)."""
        return {p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p in self.requests if m == "GET" and "/resolve/" in p}
