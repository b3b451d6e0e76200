"""A Hugging Face Hub on loopback that speaks just enough of the upload protocol for ``push_to_hub``.

It answers huggingface_hub's calls -- create the repository, validate the card's YAML, ask how each file is
uploaded ("regular": its bytes travel in the commit itself, base64), commit -- and keeps what arrived, so a test
can compare the uploaded bytes with the local files. Point huggingface_hub at it with ``HF_ENDPOINT``.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}  # repo id -> {"private": bool, "files": {path: bytes}, "commits": [...]}
        self.authorizations: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, body: bytes) -> tuple[int, dict]:
        if path == "/api/repos/create":
            request = json.loads(body)
            repo = f"{request['organization']}/{request['name']}"
            self.repos.setdefault(repo, {"private": request.get("visibility") == "private", "files": {}, "commits": []})
            return 200, {"url": f"{self.endpoint}/{repo}"}
        if path == "/api/validate-yaml":
            return 200, {"errors": [], "warnings": []}
        parts = path.strip("/").split("/")  # api, models, ORG, NAME, preupload|commit, REVISION
        repo = f"{parts[2]}/{parts[3]}" if len(parts) == 6 else None
        if repo not in self.repos:
            return 404, {"error": f"Repository {repo} not found"}
        if parts[4] == "preupload":
            files = json.loads(body)["files"]
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        if parts[4] == "commit":
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            for line in lines:
                if line["key"] == "file":
                    self.repos[repo]["files"][line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            self.repos[repo]["commits"].append(lines[0]["value"]["summary"])
            oid = f"{len(self.repos[repo]['commits']):040x}"
            return 200, {"commitUrl": f"{self.endpoint}/{repo}/commit/{oid}", "commitOid": oid}
        return 404, {"error": f"no route {path}"}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hub.authorizations.append(self.headers.get("Authorization", ""))
                status, payload = hub.answer(self.path.split("?")[0], body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        return Handler
