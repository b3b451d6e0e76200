"""``labelgraph serve`` under hostile input and process faults: uploads that cost too much to decode, more uploads than
memory, slow and vanishing clients, a dead inference worker and SIGTERM. Every server binds to 127.0.0.1; every load
is bounded in count and time."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("litserve", reason="the serve extra is not installed (pip install -e .[serve])")

from labelgraph import create_model  # noqa: E402
from labelgraph.apis import save_model  # noqa: E402
from labelgraph.serving.process import ServerProcess  # noqa: E402

from .conftest import TINY_BACKBONE  # noqa: E402
from .test_hostile_input import png16  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    model = create_model("baseline", num_classes=3, backbone=TINY_BACKBONE).eval()
    return save_model(model, tmp_path_factory.mktemp("served") / "model", class_names=["a", "b", "c"], image_size=64)


def encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


GOOD = encoded(np.random.default_rng(0).integers(0, 256, (80, 100, 3), dtype=np.uint8), "JPEG")


def group(pgid: int) -> dict[int, str]:
    """The live processes of a process group: pid -> command line."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    if cmdline:  # a zombie has none: it is gone, waiting to be reaped
                        found[int(entry)] = cmdline
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                continue
    return found


def memory(pid: int) -> dict[str, int]:
    """Resident and peak resident memory of a process, MB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {line.split()[0][:-1]: int(line.split()[1]) // 1024 for line in lines if line.startswith(("VmRSS", "VmHWM"))}


def post_images(url: str, files: list[tuple[str, bytes, str]], timeout: float = 30) -> tuple[int, float, dict]:
    start = time.perf_counter()
    answer = httpx.post(url + "/predict", files=[("images", f) for f in files], timeout=timeout)
    return answer.status_code, time.perf_counter() - start, answer.json()


def test_images_too_costly_to_decode_are_refused_at_once_while_good_requests_are_answered(model_dir, tmp_path):
    bomb = png16(tmp_path / "big.png", 9400, 9400).read_bytes()  # ~500 KB, 506 MB decoded
    with ServerProcess(model_dir, "--quiet") as server:

        async def both() -> list:
            async with httpx.AsyncClient(timeout=30) as client:

                async def timed(files: list) -> tuple[int, float, dict]:
                    start = time.perf_counter()
                    answer = await client.post(server.url + "/predict", files=[("images", f) for f in files])
                    return answer.status_code, time.perf_counter() - start, answer.json()

                return await asyncio.gather(
                    timed([("big.png", bomb, "image/png")] * 64), timed([("g.jpg", GOOD, "image/jpeg")])
                )

        (status, seconds, body), (good_status, good_seconds, _) = asyncio.run(both())
        assert status == 413 and seconds < 2, (status, seconds)
        assert "decoding it would take 506 MB" in body["errors"][0]["error"] and len(body["errors"]) == 64
        assert good_status == 200 and good_seconds < 2, (good_status, good_seconds)
        photo = encoded(np.zeros((3000, 4000, 3), dtype=np.uint8), "JPEG")  # 36 MB as pixels, decoded at 1/8
        assert post_images(server.url, [("photo.jpg", photo, "image/jpeg")])[0] == 200
        assert "Traceback" not in server.log()


def test_uploads_in_flight_are_bounded_by_a_memory_budget(model_dir):
    budget_mb = 200
    big = encoded(np.random.default_rng(1).integers(0, 256, (1700, 1700, 3), dtype=np.uint8), "PNG", compress_level=0)
    args = ("--max-image-mb", "10", "--max-images", "2", "--max-inflight-mb", str(budget_mb), "--quiet")
    with ServerProcess(model_dir, *args) as server:
        assert post_images(server.url, [("w.png", big, "image/png")] * 2)[0] == 200  # imports and buffers, once
        holders = [pid for pid, cmd in group(server.process.pid).items() if "spawn_main" not in cmd]  # not the model
        before = {pid: memory(pid)["VmRSS"] for pid in holders}

        async def flood() -> list:
            async with httpx.AsyncClient(timeout=60) as client:

                async def upload(i: int) -> httpx.Response:
                    return await client.post(server.url + "/predict", files=[("images", (f"{i}.png", big))] * 2)

                async def good() -> httpx.Response:
                    await asyncio.sleep(0.2)
                    return await client.post(server.url + "/predict", files=[("images", ("g.jpg", GOOD))])

                return await asyncio.gather(*[upload(i) for i in range(8)], good())

        answers = asyncio.run(flood())
        statuses = [a.status_code for a in answers[:8]]
        assert answers[8].status_code == 200 and 200 in statuses and 503 in statuses, statuses
        refused = [a for a in answers[:8] if a.status_code == 503]
        assert all(a.headers["retry-after"] == "1" and "busy" in a.json()["detail"] for a in refused)
        growth = sum(memory(pid)["VmHWM"] - before[pid] for pid in holders)
        assert growth < budget_mb, (growth, statuses)  # the peak of every process but the model's, summed
        assert httpx.get(server.url + "/health").text == "ok"


async def slow_client(port: int, timeout: float) -> float:
    """Send a request one byte a second; return the seconds until the server closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.perf_counter()
    for byte in b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + bytes(100):
        try:
            writer.write(bytes([byte]))
            await writer.drain()
            if await asyncio.wait_for(reader.read(1024), 1.0) == b"":
                break
        except TimeoutError:
            continue
        except (ConnectionError, OSError):
            break
        if time.perf_counter() - start > timeout:
            break
    writer.close()
    return time.perf_counter() - start


def test_slow_clients_are_dropped_and_a_vanishing_one_is_one_line(model_dir):
    with ServerProcess(model_dir, "--read-timeout", "3", "--quiet") as server:

        async def scene() -> tuple[list[float], list[float]]:
            slow = [asyncio.create_task(slow_client(server.port, 15)) for _ in range(50)]
            await asyncio.sleep(0.5)
            good = []
            async with httpx.AsyncClient(timeout=10) as client:
                for _ in range(3):
                    start = time.perf_counter()
                    answer = await client.post(server.url + "/predict", files=[("images", ("g.jpg", GOOD))])
                    assert answer.status_code == 200
                    good.append(time.perf_counter() - start)
            return list(await asyncio.gather(*slow)), good

        held, good = asyncio.run(scene())
        assert max(good) < 2 and all(2.5 < seconds < 8 for seconds in held), (good, sorted(held))
        with socket.create_connection(("127.0.0.1", server.port)) as sock:  # a client that hangs up mid-upload
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"images\"; "
                         b"filename=\"x.png\"\r\n\r\n" + bytes(1000))  # fmt: skip
        time.sleep(1.0)
        log = server.log()
        assert log.count("did not send its request within 3 s; closed") >= 50
        assert "a client disconnected during its upload" in log and "Traceback" not in log


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_dead_worker_is_replaced_its_request_answered_and_sigterm_stops_every_process(model_dir):
    heavy = [(f"{i}.png", encoded(np.full((2000, 2000, 3), i, dtype=np.uint8), "PNG")) for i in range(24)]
    with ServerProcess(model_dir, "--quiet") as server:
        pgid = server.process.pid
        worker = next(pid for pid, cmd in group(pgid).items() if "spawn_main" in cmd)

        async def killed_while_decoding() -> tuple[httpx.Response, float]:
            async with httpx.AsyncClient(timeout=60) as client:
                request = asyncio.create_task(
                    client.post(server.url + "/predict", files=[("images", f) for f in heavy])
                )
                idle = cpu_seconds(worker)
                while cpu_seconds(worker) - idle < 0.3:  # the worker has taken the request and is decoding it
                    await asyncio.sleep(0.02)
                os.kill(worker, signal.SIGKILL)
                start = time.perf_counter()
                return await request, time.perf_counter() - start

        answer, seconds = asyncio.run(killed_while_decoding())
        assert answer.status_code == 503 and seconds < 2 and answer.headers["retry-after"], (answer.text, seconds)
        start, states = time.perf_counter(), []
        while time.perf_counter() - start < 60:
            states.append((round(time.perf_counter() - start, 1), httpx.get(server.url + "/health").status_code))
            if states[-1][1] == 200 and any(s != 200 for _, s in states):
                break
            time.sleep(0.1)
        first_bad = next(t for t, s in states if s != 200)
        assert first_bad < 2 and states[-1][1] == 200, states
        assert post_images(server.url, [("g.jpg", GOOD, "image/jpeg")])[0] == 200  # served by the new worker
        assert len(group(pgid)) >= 3
        os.kill(pgid, signal.SIGTERM)  # the main process only, as kill, systemd, Docker and Kubernetes do
        start = time.perf_counter()
        while (server.process.poll() is None or group(pgid)) and time.perf_counter() - start < 10:
            time.sleep(0.1)
        assert server.process.poll() == 0 and group(pgid) == {}, (server.process.poll(), group(pgid))
        assert "labelgraph serve: stopped" in server.log() and "1 request(s) it held answered 503" in server.log()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1)
        assert "Traceback" not in server.log()
