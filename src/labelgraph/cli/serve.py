"""``labelgraph serve MODEL_DIR``: an exported model behind an HTTP API and a web page."""

from __future__ import annotations

import argparse

from labelgraph.cli._common import (
    Parser,
    UsageError,
    non_negative_float,
    port_number,
    positive_float,
    positive_int,
    runtime_argument,
    threshold_argument,
)


def serve_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="labelgraph serve",
        description="Serve an exported model: POST /predict, GET /health, GET /metadata, the web page at /.",
    )
    p.add_argument("model", help="an exported model folder (labelgraph export, or the demo's <method>/model)")
    p.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (default), or 0.0.0.0 / :: for every interface")
    p.add_argument("--port", type=port_number, default=8000)
    p.add_argument(
        "--max-batch-size", type=positive_int, default=16, help="requests batched together across clients (16)"
    )
    p.add_argument(
        "--batch-timeout", type=non_negative_float, default=0.01, help="seconds a batch waits to fill (0.01)"
    )
    p.add_argument("--workers", type=positive_int, default=1, help="inference worker processes per device (1)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    runtime_argument(p)
    threshold_argument(p)
    p.add_argument("--top-k", type=positive_int, default=None, help="at most K labels per image")
    limit_arguments(p)
    p.add_argument("--api-key", default=None, help="demand 'Authorization: Bearer KEY' (or $LABELGRAPH_API_KEY)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without an API key")
    p.add_argument("--quiet", action="store_true", help="no line per batch")
    return p


def limit_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser.add_argument_group("limits (hostile or heavy input)")
    p.add_argument("--max-image-mb", type=positive_float, default=20.0, help="largest image file accepted (20 MB)")
    p.add_argument("--max-images", type=positive_int, default=64, help="most images in one request (64)")
    p.add_argument("--max-pixels", type=positive_int, default=None, help="largest image in pixels (PIL's bomb limit)")
    p.add_argument(
        "--max-decoded-mb",
        type=positive_float,
        default=256.0,
        help="largest decode of one image: width x height x channels x bytes per sample (256 MB)",
    )
    p.add_argument(
        "--max-inflight-mb",
        type=positive_float,
        default=None,
        help="memory for uploads in flight per HTTP process (an upload counts 5x its size); beyond: 503 + Retry-After "
        "(default: 1/8 of the machine's memory)",
    )
    p.add_argument(
        "--decode-timeout",
        type=positive_float,
        default=10.0,
        help="seconds to decode one request's images; a decode past it is stopped (10)",
    )
    p.add_argument(
        "--decode-processes",
        type=positive_int,
        default=None,
        help="decoder processes per HTTP process (twice the cores, at least 4)",
    )
    p.add_argument(
        "--read-timeout",
        type=positive_float,
        default=30.0,
        help="seconds a client has to send its headers, and the window its upload's pace is measured over (30)",
    )
    p.add_argument(
        "--min-upload-kbps",
        type=positive_float,
        default=32.0,
        help="slowest pace an upload may keep over a --read-timeout window, KB/s; slower: 408 (32)",
    )


def run(argv: list[str]) -> int:
    args = serve_parser().parse_args(argv)
    try:
        from labelgraph.serving.server import serve
        from labelgraph.serving.uploads import UploadLimits
    except ImportError as err:
        raise UsageError(f"serving needs the serve extra: pip install 'labelgraph[serve]' ({err})") from err

    limits = UploadLimits(
        max_image_bytes=int(args.max_image_mb * 2**20),
        max_images=args.max_images,
        max_pixels=args.max_pixels or UploadLimits.max_pixels,
        max_decoded_bytes=int(args.max_decoded_mb * 2**20),
        decode_timeout=args.decode_timeout,
        read_timeout=args.read_timeout,
        min_upload_rate=args.min_upload_kbps * 1024,
        max_inflight_bytes=int(args.max_inflight_mb * 2**20) if args.max_inflight_mb else None,
        decode_processes=args.decode_processes,
    )
    serve(
        args.model,
        host=args.host,
        port=args.port,
        insecure=args.insecure,
        max_batch_size=args.max_batch_size,
        batch_timeout=args.batch_timeout,
        workers=args.workers,
        device=args.device,
        runtime=args.runtime,
        threshold=args.threshold,
        top_k=args.top_k,
        limits=limits,
        api_key=args.api_key,
        log_batches=not args.quiet,
    )
    return 0
