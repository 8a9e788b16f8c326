"""Fixtures for the web tests: which models to serve, and an in-process app + TestClient.

The face model is, in order: ``$GENDERCLASS_TEST_FACE_MODEL`` (any exported .onnx with its .json),
the bundled model, or a tiny ONNX model generated here (mean brightness -> logit), so the tests run
on a fresh clone before a trained model is bundled. Nothing asserts a particular label.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from webtools import build_tiny_model, free_port, serve_args, stop, wait_until_up

from genderclass.inference.bundled import bundled_models


def _model_for(modality: str, tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """Explicit path for ``modality``, or None to let the app use the bundled model."""
    override = os.environ.get(f"GENDERCLASS_TEST_{modality.upper()}_MODEL")
    if override:
        return override
    if modality in bundled_models():
        return None
    return str(build_tiny_model(tmp_path_factory.mktemp(f"model-{modality}"), modality))


@pytest.fixture(scope="session")
def face_model(tmp_path_factory) -> str | None:
    return _model_for("face", tmp_path_factory)


@pytest.fixture(scope="session")
def fingerprint_model(tmp_path_factory) -> str | None:
    return _model_for("fingerprint", tmp_path_factory)


@pytest.fixture(scope="session")
def web_settings(face_model, fingerprint_model):
    from genderclass.web.settings import WebSettings

    return WebSettings(face_model=face_model, fingerprint_model=fingerprint_model, threads=1)


@pytest.fixture(scope="session")
def app(web_settings):
    from genderclass.web.app import create_app

    return create_app(web_settings)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as test_client:  # runs the lifespan (preload)
        yield test_client


@pytest.fixture(scope="session")
def live_server(face_model, fingerprint_model, tmp_path_factory):
    """``genderclass serve`` in a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            serve_args(face_model, fingerprint_model, port), stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log_path)
        yield url
    finally:
        stop(process)
