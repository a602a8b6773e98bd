"""XAPI over https: certificates are verified unless the operator explicitly says not to."""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import XapiUnavailable
from bot.simulator import SimulatorServer, simulator
from bot.xen.connection import Xapi, XenConfig


@pytest.fixture
def https_pool(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The demo pool served over https with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "pool.pem", tmp_path / "pool.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with SimulatorServer(simulator("demo"), tls=context) as server:
        yield server.url, cert


def _pool_name(url: str, **tls: object) -> str:
    xapi = Xapi(XenConfig(url, "root", "secret", timeout=5, **tls))  # type: ignore[arg-type]
    try:
        return xapi.call(lambda x: x.pool.get_name_label(x.pool.get_all()[0]))
    finally:
        xapi.close()


def test_an_unknown_certificate_is_refused_by_default(https_pool: tuple[str, Path]) -> None:
    """A self-signed pool certificate fails verification: XAPI is not reachable."""
    url, _ = https_pool
    with pytest.raises(XapiUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        _pool_name(url)


def test_the_ca_bundle_makes_it_trusted(https_pool: tuple[str, Path]) -> None:
    """XEN_CA_BUNDLE pointing at the pool's certificate: verified and connected."""
    url, cert = https_pool
    assert _pool_name(url, ca_bundle=str(cert)) == "demo"


def test_opting_out_works_and_is_logged(
    https_pool: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """XEN_VERIFY_TLS=false connects without checking, and says so in the log."""
    url, _ = https_pool
    with caplog.at_level(logging.WARNING):
        assert _pool_name(url, verify_tls=False) == "demo"
    assert "XEN_VERIFY_TLS is off" in caplog.text
