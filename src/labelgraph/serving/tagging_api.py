"""The inference side of ``labelgraph serve``: a LitServe ``LitAPI`` that tags the images of batched requests.

LitServe collects up to ``max_batch_size`` requests (waiting at most ``batch_timeout`` seconds) and hands them to
:meth:`TaggingAPI.predict` together; their images -- a request may carry several, already decoded and transformed to
the model's input by the HTTP process's decode pool (:mod:`~labelgraph.serving.decode_pool`) -- are scored in chunks
of ``max_batch_size`` images through the same :class:`~labelgraph.apis.Predictor` methods as ``labelgraph predict``,
so a served image gets the same numbers as a predicted file. An image that failed to decode (a truncated file) is an
error entry of its own request; a request none of whose images could be read is answered with the first image's
status (a 4xx), never with an exception that would fail the other requests of its batch.
"""

# No ``from __future__ import annotations`` here: LitServe and FastAPI read ``decode_request``'s annotation as a
# live object (the dependency that parses the upload).
import base64
import io
from typing import Annotated, Any

import litserve as ls
import numpy as np
import torch
from fastapi import Depends
from fastapi.responses import JSONResponse
from PIL import Image

from labelgraph.apis.predict import Predictor
from labelgraph.data.dataset import stack_images
from labelgraph.serving.lifecycle import exit_with_parent
from labelgraph.serving.uploads import read_upload
from labelgraph.visualization.explain import overlays


class TaggingAPI(ls.LitAPI):
    """Serves one exported model folder.

    Args:
        model_dir: the exported model (``labelgraph export``, or the demo's ``<method>/model``).
        threshold: the server's default decision rule: None (the model's stored thresholds), a probability,
            ``"calibrated"`` or ``"recall"``; a request may override it (``?threshold=``).
        top_k: the default cap on labels per image (``?top_k=`` overrides).
        max_batch_size, batch_timeout: LitServe's dynamic batching (requests per batch, seconds to wait).
        log_batches: print one line per batch the worker runs.
    """

    def __init__(
        self,
        model_dir: str,
        threshold: float | str | None = None,
        top_k: int | None = None,
        max_batch_size: int = 16,
        batch_timeout: float = 0.01,
        log_batches: bool = True,
        runtime: str = "auto",
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.model_dir = str(model_dir)
        self.runtime = runtime
        self.threshold = threshold
        self.top_k = top_k
        self.log_batches = log_batches
        self.predictor: Predictor | None = None

    def setup(self, device: str) -> None:
        exit_with_parent()  # an orphaned worker would serve on (kill -9 of the main process)
        self.predictor = Predictor.load(self.model_dir, device, self.runtime)

    def decode_request(self, request: Annotated[dict, Depends(read_upload)]) -> dict[str, Any]:
        """The upload, decoded in the HTTP process's decode pool -> the model inputs, ``(3, S, S)`` uint8 each."""
        images = request["images"]
        return {
            "names": [image["name"] for image in images],
            "indices": [image["index"] for image in images],
            "inputs": [torch.from_numpy(image["input"]) for image in images],
            "overlays": [image["overlay"] for image in images],
            "errors": request["errors"],
            "options": request["options"],
        }

    def predict(self, requests: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]] | dict[str, Any]:
        """All images of all requests of a batch scored together, in chunks of ``max_batch_size``."""
        if isinstance(requests, dict):  # max_batch_size 1: LitServe's unbatched loop hands over one request
            return self.predict([requests])[0]
        inputs = [x for request in requests for x in request["inputs"]]
        if self.log_batches:
            print(f"labelgraph serve: batch of {len(requests)} request(s), {len(inputs)} image(s)", flush=True)
        known = self.known_rows(requests)  # (N, C) in {1, 0, -1}, or None when no request knows a label
        chunks = range(0, len(inputs), self.max_batch_size)
        probs = [
            self.predictor.scores(
                stack_images(inputs[i : i + self.max_batch_size]),
                None if known is None else known[i : i + self.max_batch_size],
            )
            for i in chunks
        ]
        probs = np.concatenate(probs) if probs else np.zeros((0, len(self.predictor.classes)))
        results, start = [], 0
        for request in requests:
            count = len(request["inputs"])
            results.append(self.answer(request, probs[start : start + count]))
            start += count
        return results

    def known_rows(self, requests: list[dict[str, Any]]) -> np.ndarray | None:
        """Every image's known labels (its request's ``known`` option), or None when no request has one."""
        if not any("known" in r["options"] for r in requests):
            return None
        unknown = [-1] * len(self.predictor.classes)
        rows = [r["options"].get("known", unknown) for r in requests for _ in r["inputs"]]
        return np.asarray(rows, dtype=np.int8).reshape(-1, len(self.predictor.classes))

    def answer(self, request: dict[str, Any], probs: np.ndarray) -> dict[str, Any]:
        """One request's (n, C) probabilities -> its predictions (with class-map overlays if asked for)."""
        options = request["options"]
        thresholds = self.predictor.resolve_thresholds(options.get("threshold", self.threshold))
        top_k = options.get("top_k", self.top_k)
        predictions = []
        for i, (name, index) in enumerate(zip(request["names"], request["indices"], strict=True)):
            prediction = {"index": index, "image": name, **self.predictor.tag(probs[i], thresholds, top_k)}
            if options.get("maps"):
                prediction.update(self.maps(request["inputs"][i], request["overlays"][i], prediction))
            predictions.append(prediction)
        if "known" in options:  # what the method did with them
            row = np.asarray(options["known"], dtype=np.int8)
            for prediction in predictions:
                prediction["known"] = self.predictor.known_dict(row)
            how = self.predictor.known_labels_use
            return {"predictions": predictions, "errors": request["errors"], "known_labels": how}
        return {"predictions": predictions, "errors": request["errors"]}

    def maps(self, x: torch.Tensor, picture: np.ndarray, prediction: dict[str, Any]) -> dict[str, Any]:
        """The method's own class maps (or Grad-CAM) of the predicted labels (the most probable class if none), as
        base64 PNG overlays on ``picture`` (the region the model saw, (h, w, 3) uint8): ``{"maps": {class:
        "data:image/png;base64,..."}, "maps_kind": ...}``."""
        scores = prediction["scores"]
        names = prediction["labels"] or [max(scores, key=scores.get)]
        classes = [self.predictor.classes.index(n) for n in names]
        image = Image.fromarray(picture)
        drawn, kind = overlays(self.predictor.model, x[None].to(self.predictor.device), image, classes)
        encoded = {}
        for name, picture in zip(names, drawn, strict=True):
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            encoded[name] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        return {"maps": encoded, "maps_kind": kind}

    def encode_response(self, output: dict[str, Any]):  # no return annotation: FastAPI would take it for a model
        """200 with the predictions (and the errors of any bad image beside them); a 4xx when none could be read."""
        if not output["predictions"]:
            first = output["errors"][0]
            body = {"detail": f"no readable image: {first['error']}", "errors": output["errors"]}
            return JSONResponse(body, status_code=first["status"])
        return JSONResponse({"classes": self.predictor.classes, **output})  # already plain JSON: no jsonable_encoder
