"""``labelgraph serve`` under hostile input and process faults: uploads that cost too much to decode, more uploads than
memory, slow and vanishing clients, a dead inference worker and SIGTERM. Every server binds to 127.0.0.1; every load
is bounded in count and time."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("litserve", reason="the serve extra is not installed (pip install -e .[serve])")

from benchmarks.bench_decode_modes import many_scans_jpeg  # noqa: E402

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
    bomb = png16(tmp_path / "big.png", 9400, 9400).read_bytes()  # ~500 KB, over 500 MB decoded
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
        assert re.search(r"decoding it would take \d+ MB .* of 16 bits", body["errors"][0]["error"]), body["errors"][0]
        assert len(body["errors"]) == 64
        assert good_status == 200 and good_seconds < 2, (good_status, good_seconds)
        photo = encoded(np.zeros((3000, 4000, 3), dtype=np.uint8), "JPEG")  # 36 MB as pixels, decoded at 1/8
        assert post_images(server.url, [("photo.jpg", photo, "image/jpeg")])[0] == 200
        assert "Traceback" not in server.log()


async def timed_posts(url: str, requests: list[list[tuple[str, bytes, str]]], delay: float = 0.0) -> list:
    """Send the requests concurrently (the last one ``delay`` seconds after the others): ``[(status, seconds, body)]``
    in order."""
    async with httpx.AsyncClient(timeout=60) as client:

        async def timed(files: list, wait: float) -> tuple[int, float, dict]:
            await asyncio.sleep(wait)
            start = time.perf_counter()
            answer = await client.post(url + "/predict", files=[("images", f) for f in files])
            return answer.status_code, time.perf_counter() - start, answer.json()

        waits = [0.0] * (len(requests) - 1) + [delay]
        return await asyncio.gather(*(timed(files, wait) for files, wait in zip(requests, waits, strict=True)))


def test_a_slow_decode_is_stopped_at_its_deadline_and_never_stalls_a_good_request(model_dir):
    """Four uploads that pass every header check but take seconds each to decode (progressive JPEGs of 100 scans over
    8000 x 8000 pixels), then a good one: the good one is answered within 2 s, and the slow ones are stopped when
    their decode time is spent (killed in the decode pool), not when their decode would have ended."""
    slow = many_scans_jpeg(8000, 90)  # 380 KB, 100 scans: 4.6 s to decode alone on this machine's core
    bomb = many_scans_jpeg(2048, 2000)  # 2,010 scans: refused from its markers alone
    with ServerProcess(model_dir, "--quiet", "--decode-timeout", "2") as server:
        assert post_images(server.url, [("g.jpg", GOOD, "image/jpeg")])[0] == 200  # the decoders are warm
        slow_requests = [[(f"slow{i}.jpg", slow, "image/jpeg")] for i in range(4)]
        answers = asyncio.run(timed_posts(server.url, [*slow_requests, [("g.jpg", GOOD, "image/jpeg")]], 0.5))
        *slow_answers, (good_status, good_seconds, _) = answers
        assert good_status == 200 and good_seconds < 2, (good_status, good_seconds)
        for status, seconds, body in slow_answers:
            assert status == 503 and "not decoded within the request's decode time" in body["detail"], body
            assert seconds < 3.5, seconds  # the deadline (2 s) preempts: four 4.6 s decodes on 2 cores take 9 s
        status, seconds, body = post_images(server.url, [("bomb.jpg", bomb, "image/jpeg")])
        assert status == 413 and seconds < 1 and "a JPEG of 2010 scans" in body["detail"], (status, seconds, body)
        assert post_images(server.url, [("g.jpg", GOOD, "image/jpeg")])[0] == 200  # killed decoders were replaced
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
        assert log.count("sent its request line and headers too slowly") >= 50
        assert "a client disconnected during its upload" in log and "Traceback" not in log


def send_paced(port: int, head: bytes, body: bytes, rate: float, stall_after: int | None = None) -> tuple[bytes, float]:
    """Send ``head`` then ``body`` at ``rate`` bytes a second (stopping after ``stall_after`` bytes of it): the
    server's answer (b"" if it closed without one) and the seconds it took."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head)
            step = max(1, int(rate / 20))
            for i in range(0, len(body) if stall_after is None else stall_after, step):
                sock.sendall(body[i : i + step])
                time.sleep(step / rate)
            answer = sock.recv(65536)
        except (ConnectionError, OSError):
            answer = b""
    return answer, time.perf_counter() - start


def test_headers_are_bounded_and_uploads_are_timed_by_their_pace_not_their_length(model_dir):
    """A 100 MB header to the open /health route is cut at 64 KB (431) while a good request is answered at once; an
    honest upload at 100 KB/s finishes although it takes longer than --read-timeout; one that stalls is answered 408."""
    photo = encoded(np.random.default_rng(1).integers(0, 256, (400, 400, 3), dtype=np.uint8), "PNG")  # ~480 KB
    boundary = b"b0undary"
    form = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="images"; filename="p.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + photo + b"\r\n--" + boundary + b"--\r\n")  # fmt: skip
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" + boundary
            + b"\r\nContent-Length: " + str(len(form)).encode() + b"\r\n\r\n")  # fmt: skip
    with ServerProcess(model_dir, "--quiet", "--read-timeout", "2") as server:
        with socket.create_connection(("127.0.0.1", server.port)) as flood:
            flood.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: ")
            sent, start = 0, time.perf_counter()
            try:
                while sent < 100 * 2**20:
                    flood.sendall(b"a" * 2**16)
                    sent += 2**16
            except (ConnectionError, OSError):
                pass
            cut = time.perf_counter() - start
            status, seconds, _ = post_images(server.url, [("g.jpg", GOOD, "image/jpeg")])
        assert sent < 32 * 2**20 and cut < 1 and status == 200 and seconds < 2, (sent, cut, status, seconds)
        answer, seconds = send_paced(server.port, head, form, rate=100_000)  # ~5 s, more than --read-timeout 2
        assert answer.startswith(b"HTTP/1.1 200") and seconds > 4, (answer[:200], seconds)
        answer, seconds = send_paced(server.port, head, form, rate=100_000, stall_after=100_000)
        assert answer.startswith(b"HTTP/1.1 408") and seconds < 6, (answer[:200], seconds)
        assert post_images(server.url, [("g.jpg", GOOD, "image/jpeg")])[0] == 200
        assert "sent its body too slowly" in server.log() and "Traceback" not in server.log()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_dead_worker_is_replaced_its_request_answered_and_sigterm_stops_every_process(model_dir):
    # 64 images with class maps: seconds of work in the inference worker (the decoding is done before, elsewhere)
    heavy = [(f"{i}.png", encoded(np.full((400, 400, 3), i, dtype=np.uint8), "PNG")) for i in range(64)]
    with ServerProcess(model_dir, "--quiet") as server:
        pgid = server.process.pid
        worker = next(pid for pid, cmd in group(pgid).items() if "spawn_main" in cmd)

        async def killed_while_decoding() -> tuple[httpx.Response, float]:
            async with httpx.AsyncClient(timeout=60) as client:
                request = asyncio.create_task(
                    client.post(server.url + "/predict?maps=true", files=[("images", f) for f in heavy])
                )
                idle = cpu_seconds(worker)
                while cpu_seconds(worker) - idle < 0.3:  # the worker has taken the request and is working on it
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


def test_sigterm_to_the_process_group_answers_the_request_in_flight_and_prints_no_traceback(model_dir):
    """``kill -- -PGID`` (a container runtime stopping the group) while an upload is being decoded: its request is
    answered 503 with Retry-After (the worker it would go to was ended by the same signal), every process exits, and
    the log holds no traceback (LitServe's manager process used to die first, failing the orderly shutdown)."""
    slow = many_scans_jpeg(8000, 90)  # 4.6 s to decode: still decoding when the signal comes
    with ServerProcess(model_dir, "--quiet") as server:
        pgid = server.process.pid

        async def stopped_while_decoding() -> httpx.Response:
            async with httpx.AsyncClient(timeout=30) as client:
                request = asyncio.create_task(client.post(server.url + "/predict", files=[("images", ("s.jpg", slow))]))
                await asyncio.sleep(1.5)
                os.killpg(pgid, signal.SIGTERM)
                return await request

        answer = asyncio.run(stopped_while_decoding())
        assert answer.status_code == 503 and answer.headers["retry-after"], answer.text
        start = time.perf_counter()
        while (server.process.poll() is None or group(pgid)) and time.perf_counter() - start < 15:
            time.sleep(0.1)
        assert group(pgid) == {} and "labelgraph serve: stopped" in server.log(), (group(pgid), server.log())
        assert "Traceback" not in server.log() and "ERROR" not in server.log(), server.log()
