"""Serving: ``labelgraph serve`` with 16 concurrent clients vs offline ``Predictor.predict`` in batches of 16, on the
same image files, and request latency (p50 / p99) at 1 and 16 clients.

    python -m benchmarks.bench_serve [--out benchmarks/results/serve.json] [--against OTHER/src]

Each setting exports a model with random weights (speed does not depend on them), starts the server in a child
process (default batching: up to 16 requests, 10 ms), and times, in interleaved rounds, the offline prediction of
the images and the same images sent as one-image requests (and as four-image requests) over 16 concurrent keep-alive
connections. The client runs on the same machine as the server and shares its cores: the served figure includes
its cost. ``--against`` also starts the server of another source tree (e.g. ``git worktree add /tmp/before REV``, then
``--against /tmp/before/src``) on the same model and times it in the same interleaved rounds: a change to the server
measured side by side with the code before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.bench_methods import label_graph
from benchmarks.common import RESULTS, interleaved, write
from labelgraph import create_model
from labelgraph.apis import Predictor, save_model
from labelgraph.serving.process import ServerProcess

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
SETTINGS = (("resnet10t", 96, "the demo's model"), ("resnet50", 224, "a ResNet-50 at 224 px"))


def image_files(folder: Path, count: int) -> list[Path]:
    """``count`` JPEG files: the darknet photos (install.sh) cycled, else generated 640 x 480 scenes."""
    sources = sorted(PHOTOS.glob("*.jpg"))
    if not sources:
        rng = np.random.default_rng(0)
        for i in range(8):
            noise = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
            Image.fromarray(noise).resize((640, 480), Image.BICUBIC).save(folder / f"scene{i}.jpg", quality=90)
        sources = sorted(folder.glob("scene*.jpg"))
    return [sources[i % len(sources)] for i in range(count)]


def multipart_request(host: str, port: int, group: list[tuple[str, bytes]]) -> bytes:
    """One ``POST /predict`` with ``group``'s images as multipart files, as raw HTTP/1.1 bytes (built once)."""
    boundary = b"labelgraph-benchmark-boundary"
    body = b"".join(
        b"--" + boundary + b"\r\n"
        + f'Content-Disposition: form-data; name="images"; filename="{name}"\r\n'.encode()
        + b"Content-Type: image/jpeg\r\n\r\n" + data + b"\r\n"
        for name, data in group
    ) + b"--" + boundary + b"--\r\n"  # fmt: skip
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\n\r\n"
    )
    return head.encode() + body


async def send_all(url: str, payloads: list[tuple[str, bytes]], clients: int, per_request: int = 1) -> list[float]:
    """The payloads as POST /predict requests of ``per_request`` images from ``clients`` concurrent keep-alive
    connections; seconds per request. A minimal HTTP/1.1 client on prebuilt requests, so that the load generator,
    which shares the server's cores, costs it little (httpx spends ~3.5 ms of CPU per request here)."""
    host, port = url.removeprefix("http://").split(":")
    groups = [payloads[i : i + per_request] for i in range(0, len(payloads), per_request)]
    pending = [(len(g), multipart_request(host, int(port), g)) for g in groups]
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while pending:
                count, request = pending.pop()
                start = time.perf_counter()
                writer.write(request)
                await writer.drain()
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                if b" 200 " not in status or len(json.loads(body)["predictions"]) != count:
                    raise RuntimeError(f"{status!r} {body[:200]!r}")
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def measure(backbone: str, size: int, images: int, rounds: int, folder: Path, against: Path | None = None) -> dict:
    graph = label_graph(80)
    torch.manual_seed(0)
    model = create_model("ml_gcn", num_classes=80, label_graph=graph, backbone=backbone).eval()
    model_dir = save_model(model, folder / backbone, class_names=graph.class_names, image_size=size, label_graph=graph)
    files = image_files(folder, images)
    payloads = [(f"{i}_{p.name}", p.read_bytes()) for i, p in enumerate(files)]
    predictor = Predictor.load(model_dir)
    args = ("--quiet", "--max-batch-size", "16", "--batch-timeout", "0.01")
    with ExitStack() as stack:
        servers = {"served": stack.enter_context(ServerProcess(model_dir, *args))}
        if against is not None:
            servers["against"] = stack.enter_context(ServerProcess(model_dir, *args, env={"PYTHONPATH": str(against)}))
        contenders = {"offline": lambda: predictor.predict(files, batch_size=16)}
        for name, server in servers.items():
            asyncio.run(send_all(server.url, payloads[:32], 16))  # warm up: the worker's first batches
            contenders[f"{name}_16_clients"] = lambda url=server.url: asyncio.run(send_all(url, payloads, 16))
            contenders[f"{name}_16_clients_4_per_request"] = lambda url=server.url: asyncio.run(
                send_all(url, payloads, 16, 4)
            )
        seconds = interleaved(contenders, rounds=rounds)
        latency = {n: asyncio.run(send_all(servers["served"].url, payloads, n)) for n in (1, 16)}
    row = {"backbone": backbone, "image_size": size, "method": "ml_gcn", "images": images}
    row["offline_images_per_s"] = images / seconds["offline"]
    for name in servers:
        for load, key in (("16_clients", name), ("16_clients_4_per_request", f"{name}_4_per_request")):
            row[f"{name}_images_per_s_{load}"] = images / seconds[f"{name}_{load}"]
            row[f"{key}_over_offline"] = seconds["offline"] / seconds[f"{name}_{load}"]
    row |= {f"latency_ms_p{q}_{n}_clients": percentile(latency[n], q) for n in (1, 16) for q in (50, 99)}
    row["served_images_per_s_1_client"] = images / sum(latency[1])
    row["latency_ms_mean_1_client"] = 1000 * statistics.mean(latency[1])
    return row


def run(settings=SETTINGS, images: int = 160, rounds: int = 3, against: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(b, s, images, rounds, Path(tmp), against) | {"setting": what} for b, s, what in settings]
    return {
        "benchmark": "serve",
        "request": "one image per request (multipart; also 4 per request), 16 keep-alive connections from one asyncio "
        "client on the same machine",
        "server": "labelgraph serve --max-batch-size 16 --batch-timeout 0.01 (one inference worker)",
        "offline": "Predictor.predict(paths, batch_size=16)",
        "photos": "darknet" if PHOTOS.is_dir() else "generated",
        "settings": rows,
        **({"against": f"the server of {against}, same model, same rounds"} if against else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "serve.json"))
    parser.add_argument("--against", type=Path, default=None, help="another source tree's src/ to serve alongside")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(write(run(rounds=args.rounds, against=args.against), args.out))


if __name__ == "__main__":
    main()
