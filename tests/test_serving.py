"""``labelgraph serve``: a real server in a subprocess on loopback -- the API, bad input, the API key, load from 16
clients, every registered method, and the web page in a headless Chromium. Every wait is bounded."""

from __future__ import annotations

import base64
import io
import json
import queue
import random
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.responses import JSONResponse
from PIL import Image

from labelgraph import create_model, list_models
from labelgraph.apis import Predictor, save_model
from labelgraph.cli import main as cli_main
from labelgraph.graph import LabelGraph

from .conftest import TINY_BACKBONE

httpx = pytest.importorskip("httpx")
pytest.importorskip("litserve", reason="the serve extra is not installed (pip install -e .[serve])")

from labelgraph.serving.decode_pool import DecodePool, ImagePreparer  # noqa: E402
from labelgraph.serving.process import ServerProcess  # noqa: E402
from labelgraph.serving.tagging_api import TaggingAPI  # noqa: E402
from labelgraph.serving.uploads import RequestRefused, read_options  # noqa: E402

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
DARKNET_PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
TIMEOUT = httpx.Timeout(60.0)


def export(method: str, out: Path, backbone: str = "resnet10t", size: int = 96) -> Path:
    """A demo-sized model (the demo's backbone and input size), random weights, exported as the demo does."""
    torch.manual_seed(0)
    targets = (np.random.default_rng(0).random((60, len(CLASSES))) < 0.3).astype(np.int8)
    graph = LabelGraph.from_targets(targets, CLASSES)
    graph.embeddings = torch.randn(len(CLASSES), 32)
    graph.embedding_source = "image:test"  # iml_gcn accepts image-based embeddings only
    model = create_model(method, num_classes=len(CLASSES), backbone=backbone, label_graph=graph).eval()
    return save_model(model, out, class_names=CLASSES, image_size=size, label_graph=graph)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, bytes]:
    """Real photographs where install.sh fetched them, plus awkward encodings; name -> encoded bytes."""
    out = {p.name: p.read_bytes() for p in sorted(DARKNET_PHOTOS.glob("*.jpg"))}
    rng = np.random.default_rng(1)
    scene = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    for name, image, fmt in (("alpha.png", scene.convert("RGBA"), "PNG"), ("gray.png", scene.convert("L"), "PNG"),
                             ("cmyk.jpg", scene.convert("CMYK"), "JPEG"), ("scene.jpg", scene, "JPEG")):  # fmt: skip
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        out[name] = buffer.getvalue()
    return out


@pytest.fixture(scope="module")
def files_dir(photos, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("served_images")
    for name, data in photos.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return export("add_gcn", tmp_path_factory.mktemp("add_gcn"))


@pytest.fixture(scope="module")
def offline(model_dir, files_dir) -> dict[str, dict]:
    """What ``labelgraph predict`` gives for every test image: name -> {scores, labels}."""
    result = Predictor.load(model_dir).predict(sorted(files_dir.iterdir()))
    return {Path(p["image"]).name: p for p in result["predictions"]}


@pytest.fixture(scope="module")
def server(model_dir):
    args = ("--max-batch-size", "8", "--batch-timeout", "0.02", "--max-image-mb", "2", "--max-pixels", "4000000")
    with ServerProcess(model_dir, *args) as running:
        yield running


def post(url: str, files: list[tuple[str, bytes]], query: str = "", client=httpx, **kwargs) -> httpx.Response:
    parts = [("images", (name, data, "image/jpeg" if name.endswith(".jpg") else "image/png")) for name, data in files]
    return client.post(f"{url}/predict{query}", files=parts, timeout=TIMEOUT, **kwargs)


def assert_same_as_offline(prediction: dict, offline: dict) -> None:
    expected = offline[prediction["image"]]
    assert list(prediction["scores"]) == CLASSES
    assert np.allclose(list(prediction["scores"].values()), list(expected["scores"].values()), atol=1e-5, rtol=0)
    assert prediction["labels"] == expected["labels"]


class TestRoutes:
    def test_health_metadata_page_and_openapi(self, server, model_dir):
        assert httpx.get(server.url + "/health").text == "ok"
        meta = httpx.get(server.url + "/metadata").json()
        config = json.loads((model_dir / "config.json").read_text())
        assert meta["method"] == "add_gcn" and meta["classes"] == CLASSES and meta["input_size"] == 96
        assert meta["thresholds"] == [0.5] * len(CLASSES) and meta["maps"] == "class maps"
        assert meta["runtime"] == "torch"  # no model.onnx in this folder
        assert meta["temperature"] == [1.0] * len(CLASSES) and meta["recall_rule"] is None
        assert meta["preprocessing"]["eval_transform"] == config["eval_transform"] == "resize"
        assert meta["preprocessing"]["image_size"] == config["image_size"] and meta["labelgraph_version"]
        assert meta["batching"] == {"max_batch_size": 8, "batch_timeout": 0.02}
        page = httpx.get(server.url + "/")
        assert (
            page.status_code == 200 and 'id="file-input"' in page.text and "http" not in page.text.split("<style>")[1]
        )
        schema = httpx.get(server.url + "/openapi.json").json()
        assert {"/predict", "/metadata", "/health"} <= set(schema["paths"])

    def test_multipart_and_base64_give_the_numbers_of_predict(self, server, photos, offline):
        names = sorted(photos)[:5]
        answer = post(server.url, [(n, photos[n]) for n in names])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["classes"] == CLASSES and body["errors"] == []
        assert [p["image"] for p in body["predictions"]] == names  # (4 made here, 5 with darknet's photos)
        assert [p["index"] for p in body["predictions"]] == list(range(len(names)))
        for prediction in body["predictions"]:
            assert_same_as_offline(prediction, offline)
        encoded = [{"name": n, "data": base64.b64encode(photos[n]).decode()} for n in names[:2]]
        as_json = httpx.post(server.url + "/predict", json={"images": encoded}, timeout=TIMEOUT).json()
        assert as_json["predictions"] == body["predictions"][:2]

    def test_threshold_top_k_and_class_maps(self, server, photos, offline):
        name = sorted(photos)[0]
        body = post(server.url, [(name, photos[name])], "?threshold=0&top_k=3&maps=true").json()
        prediction = body["predictions"][0]
        scores = prediction["scores"]
        assert prediction["labels"] == sorted(CLASSES, key=lambda c: -scores[c])[:3]
        assert prediction["maps_kind"] == "class maps" and list(prediction["maps"]) == prediction["labels"]
        for uri in prediction["maps"].values():
            overlay = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
            assert overlay.format == "PNG" and max(overlay.size) <= 384 and overlay.mode == "RGB"
            assert np.asarray(overlay).std() > 5  # an image, not a blank
        uncalibrated = post(server.url, [(name, photos[name])], "?threshold=calibrated")
        assert uncalibrated.status_code == 422 and "no calibrated thresholds" in uncalibrated.json()["detail"]
        no_rule = post(server.url, [(name, photos[name])], "?threshold=recall")
        assert no_rule.status_code == 422 and "no recall rule" in no_rule.json()["detail"]

    def test_known_labels_are_returned_fixed_by_a_method_that_does_not_condition_on_them(self, server, photos, offline):
        names = sorted(photos)[:2]
        query = f"?known={CLASSES[0]}|!{CLASSES[1]}|?*"
        body = post(server.url, [(n, photos[n]) for n in names], query).json()
        assert body["known_labels"] == "fixed"
        for prediction in body["predictions"]:
            scores, expected = prediction["scores"], offline[prediction["image"]]["scores"]
            assert (scores[CLASSES[0]], scores[CLASSES[1]]) == (1.0, 0.0)
            assert prediction["known"] == {CLASSES[0]: 1, CLASSES[1]: 0}
            assert np.allclose([scores[c] for c in CLASSES[2:]], [expected[c] for c in CLASSES[2:]], atol=1e-5)
        refused = post(server.url, [(names[0], photos[names[0]])], "?known=zebra|?*")
        assert refused.status_code == 422 and "unknown class 'zebra'" in refused.json()["detail"]
        assert "known_labels" not in post(server.url, [(names[0], photos[names[0]])]).json()


def truncated_late(data: bytes) -> bytes:
    return data[: len(data) // 2]  # the header parses; decoding fails in the inference worker


def noise_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def tall_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (4000, 1001)).save(buffer, "PNG")  # 4.0 M pixels in ~1 kB: over the server's --max-pixels
    return buffer.getvalue()


class TestBadInput:
    """Each answered with its 4xx and a message; after all of them the server still answers a good request."""

    @pytest.fixture(scope="class")
    def good(self, photos):
        name = "scene.jpg"
        return name, photos[name]

    @pytest.mark.parametrize(
        ("case", "status", "message"),
        [
            ("text file", 415, "not an image"),
            ("random bytes", 400, "cannot read image"),
            ("empty file", 400, "empty file"),
            ("truncated header", 400, "cannot read image"),
            ("truncated data", 400, "truncated"),
            ("over --max-image-mb", 413, "the limit is 2 MB"),
            ("over --max-pixels", 413, "pixels; the limit"),
        ],
    )
    def test_bad_image(self, server, photos, good, case, status, message):
        photo = photos.get("dog.jpg", photos["scene.jpg"])
        data, media = {
            "text file": (b"hello, world\n", "text/plain"),
            "random bytes": (bytes(range(256)) * 4, "application/octet-stream"),
            "empty file": (b"", "image/jpeg"),
            "truncated header": (photo[:12], "image/jpeg"),
            "truncated data": (truncated_late(photo), "image/jpeg"),
            "over --max-image-mb": (noise_png(1000), "image/png"),
            "over --max-pixels": (tall_png(), "image/png"),
        }[case]
        answer = httpx.post(server.url + "/predict", files=[("images", ("bad", data, media))], timeout=TIMEOUT)
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert message in body["detail"] and body["errors"][0]["image"] == "bad"
        assert " object at 0x" not in answer.text  # no repr of the server's objects (the BytesIO PIL read)
        both = post(server.url, [good, ("bad", data)]) if media != "text/plain" else None
        if both is not None:  # one bad image of two: answered for the good one, the bad one named
            assert both.status_code == 200 and [p["image"] for p in both.json()["predictions"]] == [good[0]]
            assert [(e["index"], e["image"], e["status"]) for e in both.json()["errors"]] == [(1, "bad", status)]
        assert post(server.url, [good]).status_code == 200

    @pytest.mark.parametrize(
        ("request_kwargs", "query", "status", "message"),
        [
            ({"content": b"hello", "headers": {"content-type": "text/plain"}}, "", 415, "send multipart/form-data"),
            ({"files": [("picture", ("a.jpg", b"x", "image/jpeg"))]}, "", 422, "unknown field 'picture'"),
            ({"files": [("images", ("a.jpg", b"x", "image/jpeg"))], "data": {"note": "hi"}}, "", 422, "'note'"),
            ({"json": {"images": [], "threshold": 0.2}}, "", 422, "unknown field"),
            ({"json": {"pictures": []}}, "", 422, "JSON must be"),
            ({"content": b"{not json", "headers": {"content-type": "application/json"}}, "", 400, "not valid JSON"),
            ({"json": {"images": ["%%%"]}}, "", 400, "not valid base64"),
            ({"json": {"images": []}}, "", 422, "no image"),
            ({"files": [("images", ("a.jpg", b"x", "image/jpeg"))]}, "?colour=red", 422, "unknown query"),
            ({"files": [("images", ("a.jpg", b"x", "image/jpeg"))]}, "?threshold=2", 422, "threshold must be"),
            ({"files": [("images", ("a.jpg", b"x", "image/jpeg"))]}, "?maps=perhaps", 422, "maps must be"),
        ],
    )
    def test_bad_request(self, server, good, request_kwargs, query, status, message):
        answer = httpx.post(server.url + "/predict" + query, timeout=TIMEOUT, **request_kwargs)
        assert answer.status_code == status, answer.text
        assert message in answer.json()["detail"]
        assert post(server.url, [good]).status_code == 200

    def test_too_many_images(self, server, good):
        answer = post(server.url, [good] * 65)
        assert answer.status_code == 413 and "at most 64" in answer.json()["detail"]


def test_load_sixteen_clients(server, photos, offline):
    """400 requests from 16 concurrent clients, single and multi-image, a few bad: every good one answered with
    its own images' numbers, every bad one a 4xx, none lost or doubled; batches of several requests formed."""
    rng = random.Random(0)
    names = sorted(photos)
    bad = truncated_late(photos[names[0]])
    plan = []
    for i in range(400):
        chosen = rng.sample(names, rng.choice([1, 1, 1, 2, 3]))
        files = [(n, photos[n]) for n in chosen]
        if i % 25 == 7:
            files = [("bad.jpg", bad)]
        elif i % 25 == 19:
            files.insert(1, ("bad.jpg", bad))
        plan.append((i, files))
    answers: queue.Queue = queue.Queue()

    def client(share: list) -> None:
        with httpx.Client(timeout=TIMEOUT) as session:
            for i, files in share:
                response = post(server.url, files, client=session)
                answers.put((i, response.status_code, response.json()))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(client, [plan[k::16] for k in range(16)]))
    got = [answers.get_nowait() for _ in range(answers.qsize())]
    assert sorted(i for i, _, _ in got) == list(range(400))  # every request answered exactly once
    for i, status, body in got:
        sent = [name for name, _ in plan[i][1]]
        if sent == ["bad.jpg"]:
            assert status == 400 and body["errors"][0]["image"] == "bad.jpg"
            continue
        assert status == 200
        assert [p["image"] for p in body["predictions"]] == [n for n in sent if n != "bad.jpg"]
        assert [e["image"] for e in body["errors"]] == (["bad.jpg"] if "bad.jpg" in sent else [])
        for prediction in body["predictions"]:
            assert_same_as_offline(prediction, offline)
    assert httpx.get(server.url + "/health").text == "ok"
    sizes = [int(n) for n in re.findall(r"batch of (\d+) request", server.log())]
    assert sum(sizes) >= 400 and max(sizes) > 1, f"no batch of more than one request: {sizes[:40]}"


class TestAccess:
    def test_api_key_guards_every_route_but_health_and_the_page(self, model_dir, photos):
        good = [("scene.jpg", photos["scene.jpg"])]
        with ServerProcess(model_dir, env={"LABELGRAPH_API_KEY": "s3cret-key"}) as server:
            assert httpx.get(server.url + "/health").status_code == 200
            assert httpx.get(server.url + "/").status_code == 200
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"}):
                assert post(server.url, good, headers=headers).status_code == 401
                assert httpx.get(server.url + "/metadata", headers=headers).status_code == 401
                assert httpx.get(server.url + "/openapi.json", headers=headers).status_code == 401
            right = {"Authorization": "Bearer s3cret-key"}
            assert post(server.url, good, headers=right).status_code == 200
            assert httpx.get(server.url + "/metadata", headers=right).json()["method"] == "add_gcn"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--host", "0.0.0.0"], "without an API key"),
            (["--host", "::", "--api-key", ""], "--api-key KEY or LABELGRAPH_API_KEY"),
            (["--host", "192.168.1.7", "--api-key", "k"], "LitServe binds to one of"),
            (["--threshold", "calibrated"], "no calibrated thresholds"),
        ],
    )
    def test_refused_at_start_with_a_message(self, model_dir, args, message, capsys, monkeypatch):
        monkeypatch.delenv("LABELGRAPH_API_KEY", raising=False)
        assert cli_main(["serve", str(model_dir), *args]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("method", list_models())
def test_every_method_in_the_inference_worker(method, tmp_path, photos):
    """The decode pool's step (decode, transform) and the LitAPI's (batch, predict with maps, encode) for every
    registered method, in process."""
    model_dir = export(method, tmp_path / method, backbone=TINY_BACKBONE, size=64)
    api = TaggingAPI(str(model_dir), max_batch_size=4)
    api.setup("cpu")
    api.set_logger_queue(queue.Queue())
    prepare = ImagePreparer(api.predictor.image_size, api.predictor.config.eval_transform, 2**30)
    names, maps = ["scene.jpg", "gray.png", "alpha.png"], [False, False, True]
    requests = []
    for name, with_maps in zip(names, maps, strict=True):
        model_input, overlay = prepare(photos[name], name, with_maps)
        image = {"index": 0, "name": name, "input": model_input, "overlay": overlay}
        requests.append({"images": [image], "errors": [], "options": {"maps": True} if with_maps else {}})
    outputs = api.predict([api.decode_request(r) for r in requests])
    expected = Predictor.load(model_dir).predict([Image.open(io.BytesIO(photos[n])) for n in names])
    for output, reference in zip(outputs, expected["predictions"], strict=True):
        body = json.loads(api.encode_response(output).body)
        scores, expected_scores = body["predictions"][0]["scores"], reference["scores"]
        assert np.allclose(list(scores.values()), list(expected_scores.values()), atol=1e-5)
    assert outputs[2]["predictions"][0]["maps_kind"] in ("class maps", "Grad-CAM")


def test_read_options():
    assert read_options({"threshold": "0.25", "top_k": "2", "maps": "true"}) == {"threshold": 0.25, "top_k": 2,
                                                                                 "maps": True}  # fmt: skip
    assert read_options({"threshold": "calibrated"}) == {"threshold": "calibrated"}
    assert read_options({"threshold": "recall"}) == {"threshold": "recall"}
    with pytest.raises(RequestRefused, match="'calibrated' or 'recall'"):
        read_options({"threshold": "most"})


@pytest.mark.slow
@pytest.mark.parametrize("method", list_models())
def test_labelgraph_serve_serves_every_method(method, tmp_path, photos):
    model_dir = export(method, tmp_path / method, backbone=TINY_BACKBONE, size=64)
    expected = Predictor.load(model_dir).predict([Image.open(io.BytesIO(photos["scene.jpg"]))])["predictions"][0]
    with ServerProcess(model_dir, "--quiet") as server:
        answer = post(server.url, [("scene.jpg", photos["scene.jpg"])], "?maps=true")
    assert answer.status_code == 200, answer.text
    prediction = answer.json()["predictions"][0]
    assert np.allclose(list(prediction["scores"].values()), list(expected["scores"].values()), atol=1e-5)
    assert prediction["maps"]


def chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.mark.skipif(chromium() is None, reason="Debian's chromium and chromium-driver are not installed")
def test_web_page_in_headless_chromium(server, files_dir, offline, tmp_path):
    """Open the page, upload a real photo, wait for the labels, read them off the page: they are /predict's."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    photo = files_dir / ("dog.jpg" if (files_dir / "dog.jpg").exists() else "scene.jpg")
    try:
        driver.set_page_load_timeout(30)
        driver.get(server.url + "/")
        WebDriverWait(driver, 30).until(lambda d: "classes" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "file-input").send_keys(str(photo))
        card = WebDriverWait(driver, 60).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, '.result[data-state="done"]'))
        )
        shown = [(e.get_attribute("data-class"), float(e.get_attribute("data-score")))
                 for e in card.find_elements(By.CSS_SELECTOR, "li.label.predicted")]  # fmt: skip
        overlays = card.find_elements(By.CSS_SELECTOR, ".maps img")
        assert all(driver.execute_script("return arguments[0].naturalWidth", img) > 0 for img in overlays)
        driver.save_screenshot(str(tmp_path / "page.png"))
        two = sorted(p for p in files_dir.iterdir() if p != photo)[:2]  # one upload of two images, then read the order
        driver.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p in two))
        WebDriverWait(driver, 60).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, '.result[data-state="done"]')) == 3
        )
        order = [e.get_attribute("data-image") for e in driver.find_elements(By.CSS_SELECTOR, ".result")]
    finally:
        driver.quit()
    answer = post(server.url, [(photo.name, photo.read_bytes())]).json()["predictions"][0]
    assert [name for name, _ in shown] == answer["labels"] == offline[photo.name]["labels"]
    assert all(abs(score - answer["scores"][name]) < 1e-6 for name, score in shown)
    assert len(overlays) == max(1, len(answer["labels"]))
    assert Image.open(tmp_path / "page.png").size[0] > 0
    assert order == [two[0].name, two[1].name, photo.name]  # the newest upload on top, its images in upload order


def test_uploads_stay_in_memory(monkeypatch, photos):
    """A multipart file over starlette's 1 MB spool limit is read without a temporary file, and the checks run in the
    HTTP process (the FastAPI dependency alone, on a bare app)."""
    import tempfile

    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from labelgraph.serving.uploads import RequestRefused, UploadLimits, read_upload

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was spooled to disk")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", no_disk)
    from starlette.formparsers import MultiPartParser

    monkeypatch.setattr(MultiPartParser, "spool_max_size", 2**20)  # starlette's default (importing LitServe lifts it)
    app = FastAPI()
    app.state.upload_limits, app.state.calibrated = UploadLimits(max_image_bytes=8 * 2**20), False
    app.state.decode_size = (96, 96)
    app.state.decode_pool = DecodePool(ImagePreparer(96, "resize", 2**30), size=2)
    app.add_exception_handler(RequestRefused, lambda request, err: JSONResponse(err.body(), err.status))

    @app.post("/predict")
    async def predict(upload: dict = Depends(read_upload)) -> dict:
        return {"shapes": [list(i["input"].shape) for i in upload["images"]], "errors": upload["errors"]}

    big = noise_png(1100)  # ~3.5 MB
    assert len(big) > 2**20
    answer = TestClient(app).post("/predict", files=[("images", ("big.png", big, "image/png"))])
    assert answer.status_code == 200 and answer.json() == {"shapes": [[3, 96, 96]], "errors": []}
    refused = TestClient(app).post("/predict?maps=maybe", files=[("images", ("big.png", big, "image/png"))])
    assert refused.status_code == 422


@pytest.mark.parametrize(("memory_gb", "budget_mb"), [(24, 3 * 1024), (64, 4 * 1024), (1, 256)])
def test_the_default_inflight_budget_is_an_eighth_of_memory_within_256_mb_and_4_gb(memory_gb, budget_mb, monkeypatch):
    """As documented -- not raised to what the largest allowed request would hold (that made it 6.4 GB on a 24 GB
    machine); a request that could never fit is answered 413 instead (test_serving_faults)."""
    from labelgraph.serving import connections

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": memory_gb * 2**30 // 4096}
    monkeypatch.setattr(connections.os, "sysconf", pages.__getitem__)
    assert connections.default_inflight_bytes() == budget_mb * 2**20


def test_an_upload_larger_than_the_whole_budget_is_413_not_a_retry(monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from labelgraph.serving.connections import HELD_PER_BYTE, InflightBudget

    app = FastAPI()

    @app.post("/predict")
    async def predict() -> dict:
        return {"ok": True}

    app.add_middleware(InflightBudget, budget=HELD_PER_BYTE * 1000)
    client = TestClient(app)
    assert client.post("/predict", content=b"x" * 1000).status_code == 200
    too_big = client.post("/predict", content=b"x" * 1001)
    assert too_big.status_code == 413 and "more than the server's budget" in too_big.json()["detail"]
