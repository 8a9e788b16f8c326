"""``genderclass serve``: the web app on uvicorn (picked up by ``genderclass.cli.main``)."""

from __future__ import annotations

import argparse
import logging
import os

from ..cli.flags import add_device_flag
from .settings import WebSettings

DEFAULTS = WebSettings()  # one place for the server's defaults: the flags below only show them
MIB = 1024 * 1024

log = logging.getLogger("genderclass")

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
UVICORN_STARTUP_FAILURE = 3  # uvicorn's exit code when it cannot bind (port in use, no such address)


def _port(value: str) -> int:
    port = int(value)  # argparse names a bad value by this function's name
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 1 to 65535, got {value}")
    return port


def register(sub: argparse._SubParsersAction, add) -> None:
    p = add(
        sub,
        "serve",
        "Serve the upload page and the JSON API (FastAPI on uvicorn).",
        "  genderclass serve\n"
        "  genderclass serve --port 8080 --workers 2\n"
        "  genderclass serve --model runs/face --fingerprint-model runs/fp/export/fingerprint.onnx",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (no authentication: keep it local)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port")
    p.add_argument("--workers", type=int, default=1, help="worker processes; each loads the models once")
    p.add_argument("--model", help="face model .onnx/.json or run folder; unset = the bundled face model")
    p.add_argument("--fingerprint-model", help="fingerprint model; unset = the bundled one, if installed")
    p.add_argument(
        "--max-upload-mb", type=float, default=DEFAULTS.max_upload_bytes / MIB, help="largest request body, in MiB"
    )
    p.add_argument(
        "--max-megapixels",
        type=float,
        default=DEFAULTS.max_pixels / 1e6,
        help="largest image accepted (width x height)",
    )
    p.add_argument("--max-files", type=int, default=DEFAULTS.max_files, help="files per request")
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULTS.threads,
        help="ONNX Runtime threads per image being classified (two images at a time per worker; 0 = min(2, cores)); to use more cores, add --workers",
    )
    p.add_argument(
        "--detect-max-side",
        type=int,
        default=DEFAULTS.detect_max_side,
        help="photos are downscaled to this long side for face detection: smaller is faster but finds only "
        "larger faces (when none is found, the photo is searched again at up to 960 px)",
    )
    add_device_flag(p)
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=cmd_serve)


def settings_from_args(args: argparse.Namespace) -> WebSettings:
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.max_upload_mb <= 0 or args.max_megapixels <= 0:
        raise ValueError("--max-upload-mb and --max-megapixels must be positive")
    if args.threads < 0:
        raise ValueError("--threads must be 0 (automatic) or more")
    return WebSettings(
        face_model=args.model,
        fingerprint_model=args.fingerprint_model,
        max_upload_bytes=int(args.max_upload_mb * MIB),
        max_pixels=int(args.max_megapixels * 1_000_000),
        max_files=args.max_files,
        threads=args.threads,
        detect_max_side=args.detect_max_side,
        loopback_only=args.host in LOOPBACK,  # then a request naming another host is a rebinding attack
        device=args.device,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..runtime import check_device
    from .app import create_app
    from .registry import ModelRegistry

    settings = settings_from_args(args)
    check_device(settings.device)  # a missing GPU runtime is said once, before any worker starts
    # The face detector (libfacedetection) parallelises with OpenMP, whose idle threads spin-wait: on a
    # busy 2-core machine, 2 OpenMP threads cost ~3.5x the CPU of 1 per request (337 vs 91 ms measured).
    # Parallelism comes from --workers. Set before the detector's library is loaded; workers inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    registry = ModelRegistry(settings)  # fail here, with a clear message, if a model is missing
    for modality, path in registry.paths.items():
        log.info("%s model: %s", modality, path)
    if args.host not in LOOPBACK:
        log.warning("listening on %s: the app has no authentication; anyone who can reach it can use it", args.host)
    log_level = "warning" if args.quiet else "info"
    common = {"host": args.host, "port": args.port, "log_level": log_level, "access_log": args.access_log}
    try:
        if args.workers == 1:
            uvicorn.run(create_app(settings), **common)
        else:
            os.environ.update(settings.to_env())  # inherited by the worker processes
            uvicorn.run("genderclass.web.app:app_from_env", factory=True, workers=args.workers, **common)
    except SystemExit as exc:
        if exc.code != UVICORN_STARTUP_FAILURE:
            raise
        # exit 3 means "missing optional extra" here; uvicorn has logged the reason above
        from ..cli.exit_codes import EXIT_USAGE

        log.error("the server could not start on %s:%d", args.host, args.port)
        return EXIT_USAGE
    return 0
