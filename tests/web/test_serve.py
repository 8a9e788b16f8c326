"""``genderclass serve`` for real: uvicorn in a subprocess, raw sockets for the size limit, and the
multi-worker path (settings travel to the workers in environment variables)."""

from __future__ import annotations

import socket
import subprocess
import time
from urllib.parse import urlparse

import httpx
import pytest
from webcorpus import jpeg_bytes
from webtools import free_port, serve_args, stop, wait_until_up

from genderclass.cli.main import build_parser, main
from genderclass.web.settings import WebSettings


def _raw_request(url: str, head: bytes, body_chunks=(), timeout: float = 20.0) -> bytes:
    """Send ``head`` and then as many ``body_chunks`` as the server takes; return what it answered."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early: exactly what is tested
        answer = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
                if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


def test_healthz_and_predict_over_http(live_server):
    assert httpx.get(live_server + "/healthz").json()["status"] == "ok"
    response = httpx.post(
        live_server + "/api/v1/predict", files={"file": ("a.jpg", jpeg_bytes(), "image/jpeg")}, timeout=30
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["error"] is None


def test_declared_oversize_body_is_refused_before_it_is_sent(live_server):
    host = urlparse(live_server).netloc
    head = (
        f"POST /api/v1/predict HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 50000000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = _raw_request(live_server, head)  # not one byte of the body is sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"request_too_large"' in answer
    assert time.monotonic() - started < 5


def test_client_that_sends_everything_first_still_reads_the_413(live_server):
    # httpx (like browsers) writes the whole body before reading: the server must not reset the connection.
    body = bytes(11 * 1024 * 1024)
    response = httpx.post(live_server + "/api/v1/predict", files={"file": ("big.jpg", body, "image/jpeg")}, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_chunked_oversize_body_is_cut_off_while_reading(live_server):
    host = urlparse(live_server).netloc
    head = (
        f"POST /api/v1/predict HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    chunks = [chunk] * 200 + [b"0\r\n\r\n"]  # 13 MB in 64 kB chunks, no Content-Length anywhere
    answer = _raw_request(live_server, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"request_too_large"' in answer


@pytest.mark.slow
def test_several_workers_share_the_settings(face_model, fingerprint_model, tmp_path):
    port = free_port()
    log_path = tmp_path / "server.log"
    args = serve_args(face_model, fingerprint_model, port, "--workers", "2", "--max-upload-mb", "0.5")
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log_path, timeout=90)
        limits = httpx.get(url + "/api/v1/models").json()["limits"]
        assert limits["max_upload_bytes"] == 512 * 1024  # came through GENDERCLASS_WEB_* variables
        with httpx.Client(timeout=30) as http:
            for seed in range(4):
                files = {"file": ("a.jpg", jpeg_bytes(seed=seed), "image/jpeg")}
                small = http.post(url + "/api/v1/predict", files=files)
                assert small.status_code == 200, small.text
            big = bytes(700 * 1024)  # the body size decides, before any decoding
            too_big = http.post(url + "/api/v1/predict", files={"file": ("big.jpg", big, "image/jpeg")})
            assert too_big.status_code == 413
    finally:
        stop(process)


def test_serve_is_a_command():
    parser = build_parser()
    args = parser.parse_args(["serve", "--port", "9000", "--workers", "2", "--max-upload-mb", "5"])
    assert args.func.__name__ == "cmd_serve" and args.port == 9000 and args.host == "127.0.0.1"


def test_serve_with_a_missing_model_is_a_usage_error(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nope.onnx")]) == 2


def test_settings_round_trip_through_the_environment():
    settings = WebSettings(
        face_model="m/face.onnx", max_upload_bytes=123, max_pixels=456, threads=1, preload=False, detect_max_side=200
    )
    assert WebSettings.from_env(settings.to_env()) == settings
    assert WebSettings.from_env({}) == WebSettings()
    with pytest.raises(ValueError):
        WebSettings(max_upload_bytes=0)
    with pytest.raises(ValueError):
        WebSettings(detect_max_side=2000)
