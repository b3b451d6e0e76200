"""``labelgraph serve MODEL_DIR``: an exported model behind HTTP, on LitServe (FastAPI + uvicorn underneath).

Routes:
    ``POST /predict``   images (multipart files in ``images``, or JSON with base64) -> scores, labels, maps
    ``GET /health``     ``ok`` once the model is loaded (never needs the key)
    ``GET /metadata``   method, classes in order, input size, thresholds, preprocessing, version, limits
    ``GET /``           the web page: drop images, see labels and class-map overlays (offline: no CDN, no build)
    ``GET /docs``       the OpenAPI page (FastAPI's)

LitServe runs the model in its own inference worker process(es) (``--workers`` per device) and batches requests
across clients (:class:`~labelgraph.serving.tagging_api.TaggingAPI`); the HTTP process only reads and checks the
uploads (:mod:`~labelgraph.serving.uploads`). What LitServe does not do as this project needs, and how it is done
here: its ``/`` answers ``litserve running`` (replaced by the page); its API-key option reads one global
``X-API-Key`` and its ``authorize`` hook would guard ``/health`` too (a middleware demands ``Authorization: Bearer``
instead); it writes a ``client.py`` into the working directory unless told not to (told not to); a SIGTERM to its
main process left the other processes serving, a dead worker took half a minute to stop the server, slow clients
were never timed out and uploads in flight were not bounded (:mod:`~labelgraph.serving.lifecycle`,
:mod:`~labelgraph.serving.connections`).
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

import litserve as ls
import torch
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse

from labelgraph.apis.predict import Predictor
from labelgraph.errors import InvalidInputError
from labelgraph.serving.access import BearerKeyMiddleware, is_loopback, resolve_api_key
from labelgraph.serving.connections import InflightBudget, deadline_protocol, default_inflight_bytes
from labelgraph.serving.decode_pool import DecodeInSubprocesses, ImagePreparer, default_pool_size
from labelgraph.serving.lifecycle import (
    AnswerWhenStopping,
    ExitWithParent,
    end_children,
    stop_on_sigterm,
    stop_worker_monitor,
)
from labelgraph.serving.tagging_api import TaggingAPI
from labelgraph.serving.uploads import RequestRefused, UploadLimits
from labelgraph.serving.worker_watch import FailRequestsOfDeadWorkers

GRACEFUL_SECONDS = 5  # an HTTP process told to stop finishes its requests within this; those left are answered 503
LITSERVE_HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "0.0.0.0": "0.0.0.0", "::": "::"}


def metadata(predictor: Predictor, api: TaggingAPI, limits: UploadLimits) -> dict[str, Any]:
    """What ``GET /metadata`` answers (computed once, in the parent process, from the loaded model)."""
    config = predictor.config
    return {
        "method": config.method,
        "classes": predictor.classes,
        "input_size": predictor.image_size,
        "thresholds": [float(t) for t in predictor.thresholds],
        "calibrated": predictor.calibrated,
        "temperature": [float(t) for t in predictor.temperature],
        "logit_bias": [float(b) for b in predictor.logit_bias],
        "recall_rule": predictor.recall_rule,
        "preprocessing": config.preprocessing,
        "runtime": predictor.runtime,
        "maps": "class maps" if predictor.model.head.provides("class_maps") else "Grad-CAM",
        "labelgraph_version": version("labelgraph"),
        "defaults": {"threshold": api.threshold, "top_k": api.top_k},
        "batching": {"max_batch_size": api.max_batch_size, "batch_timeout": api.batch_timeout},
        "limits": {
            "max_image_mb": limits.max_image_bytes / 2**20,
            "max_images": limits.max_images,
            "max_pixels": limits.max_pixels,
            "max_decoded_mb": limits.max_decoded_bytes / 2**20,
            "max_inflight_mb": inflight_bytes(limits) / 2**20,
            "decode_timeout_s": limits.decode_timeout,
            "decode_processes": limits.decode_processes or default_pool_size(),
            "read_timeout_s": limits.read_timeout,
            "min_upload_kb_per_s": limits.min_upload_rate / 1024,
        },
    }


def build_server(
    model_dir: str | Path,
    *,
    max_batch_size: int = 16,
    batch_timeout: float = 0.01,
    workers: int = 1,
    device: str = "auto",
    runtime: str = "auto",
    threshold: float | str | None = None,
    top_k: int | None = None,
    limits: UploadLimits | None = None,
    api_key: str | None = None,
    log_batches: bool = True,
) -> ls.LitServer:
    """The LitServer for one exported model, routes and checks in place (``run`` it to serve)."""
    limits = limits or UploadLimits()
    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    # fail here, with the file named, rather than in a worker (--runtime onnx without a model.onnx too)
    predictor = Predictor.load(model_dir, runtime=runtime if on_cpu else "torch")
    predictor.resolve_thresholds(threshold)  # 'calibrated' / 'recall' on a model without them is refused now
    api = TaggingAPI(
        str(model_dir),
        threshold,
        top_k,
        max_batch_size=max_batch_size,
        batch_timeout=batch_timeout,
        log_batches=log_batches,
        runtime=runtime,
    )
    budget = inflight_bytes(limits) // workers  # one HTTP process per worker, each with its share
    preparer = ImagePreparer(predictor.image_size, predictor.config.eval_transform, limits.max_decoded_bytes)
    decoding = {"preparer": preparer, "size": limits.decode_processes or default_pool_size()}
    middlewares = [(ExitWithParent, {}), (AnswerWhenStopping, {"grace": GRACEFUL_SECONDS - 1})]
    middlewares += [(DecodeInSubprocesses, decoding), (InflightBudget, {"budget": budget})]
    middlewares += [(BearerKeyMiddleware, {"key": api_key})] if api_key else []
    server = ls.LitServer(
        api,
        accelerator=device,
        workers_per_device=workers,
        max_payload_size=limits.max_request_bytes,
        middlewares=middlewares,
        restart_workers=True,  # a dead inference worker is replaced; /health is 503 until the new one is ready
        model_metadata={"method": predictor.config.method, "model_dir": str(model_dir)},
    )
    server.monitor_internal = 0.5  # how often LitServe looks for a dead worker (its default: 2 s)
    server.app.add_middleware(FailRequestsOfDeadWorkers, server=server)  # their requests: 503 at once
    server.uvicorn_graceful_timeout = GRACEFUL_SECONDS  # (LitServe's default: 30)
    add_routes(server, metadata(predictor, api, limits), limits)
    server.app.state.decode_size = predictor.decode_size
    return server


def inflight_bytes(limits: UploadLimits) -> int:
    return limits.max_inflight_bytes or default_inflight_bytes()


def add_routes(server: ls.LitServer, meta: dict[str, Any], limits: UploadLimits) -> None:
    app = server.app
    app.state.upload_limits = limits
    app.state.calibrated = meta["calibrated"]
    app.state.recall_rule = meta["recall_rule"] is not None
    app.state.classes = meta["classes"]
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != "/"]  # LitServe's stub
    page = files("labelgraph.serving").joinpath("page", "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/metadata")
    async def model_metadata() -> dict[str, Any]:
        """The served model: method, classes in output order, input size, thresholds, limits, version."""
        return meta

    @app.exception_handler(RequestRefused)
    async def refused(request: Request, err: RequestRefused) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000, insecure: bool = False, **options):
    """Build and run the server until interrupted; ``options`` as :func:`build_server` (``api_key`` included)."""
    if host not in LITSERVE_HOSTS:
        raise InvalidInputError(f"--host {host}: LitServe binds to one of {', '.join(LITSERVE_HOSTS)}")
    options["api_key"] = resolve_api_key(options.get("api_key"), host, insecure)
    server = build_server(model_dir, **options)
    where = "loopback only" if is_loopback(host) else f"every interface ({host})"
    access = "API key required (Authorization: Bearer)" if options["api_key"] else "no API key"
    print(f"labelgraph serve: {model_dir} on http://{host}:{port}/ ({where}; {access})", file=sys.stderr, flush=True)
    stop_on_sigterm(before=lambda: stop_worker_monitor(server))
    limits = options.get("limits") or UploadLimits()
    try:
        server.run(
            host=LITSERVE_HOSTS[host],
            port=port,
            generate_client_file=False,
            log_level="warning",
            http=deadline_protocol(limits.read_timeout, limits.min_upload_rate),
        )
    finally:
        end_children()
    print("labelgraph serve: stopped", file=sys.stderr, flush=True)
