"""Provisioning behind a TLS-inspecting proxy: npm's real failure names the variable to pass.

A local HTTPS registry whose certificate chains to a CA of its own stands in for the proxy (what a
TLS-inspecting proxy presents to npm); the harness install then fails for real, in ``npm ci``.
"""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_exportconf.netenv import hint
from pytest_exportconf.node import NodeUnavailable, provision


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def proxy_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, CA file) of an HTTPS server answering 404 to everything, certificate signed by its own CA."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate authority")
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=exportconf test proxy CA", "-addext", "basicConstraints=critical,CA:true",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:false\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "leaf.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "chain.pem").write_text((d / "leaf.pem").read_text() + (d / "ca.pem").read_text())

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "not found"}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "chain.pem", d / "leaf.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/", d / "ca.pem"
    server.shutdown()
    server.server_close()


def test_npm_behind_a_tls_inspecting_proxy_names_the_variable(proxy_registry: tuple[str, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca = proxy_registry
    monkeypatch.setenv("npm_config_registry", url)
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.delenv("NODE_EXTRA_CA_CERTS", raising=False)
    monkeypatch.delenv("npm_config_cafile", raising=False)
    with pytest.raises(NodeUnavailable) as failed:
        provision(tmp_path / "cache", log=lambda _: None)
    message = str(failed.value)
    assert "npm error code SELF_SIGNED_CERT_IN_CHAIN" in message  # npm's own words
    assert "npm could not verify the registry's TLS certificate (SELF_SIGNED_CERT_IN_CHAIN)" in message
    assert "Point NODE_EXTRA_CA_CERTS at the proxy's CA bundle" in message
    assert "passenv = NODE_EXTRA_CA_CERTS npm_config_*" in message
    assert "[now: NODE_EXTRA_CA_CERTS=not set, npm_config_cafile=not set]" in message

    # given the proxy's CA, TLS passes: what fails now is the (stand-in) registry's 404, with no TLS hint
    monkeypatch.setenv("npm_config_cafile", str(ca))
    with pytest.raises(NodeUnavailable) as failed:
        provision(tmp_path / "cache", log=lambda _: None)
    assert "E404" in str(failed.value) and "TLS" not in str(failed.value)


def test_pip_tls_failure_names_the_variables(proxy_registry: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = proxy_registry
    import sys

    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--retries", "0", "--isolated",
                           "--no-cache-dir", "--index-url", f"{url}simple", "-d", str(tmp_path), "nothing-here"],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode != 0
    why = hint(proc.stdout + proc.stderr)
    assert why.startswith("pip could not verify the index's TLS certificate (")
    assert "PIP_CERT, SSL_CERT_FILE or REQUESTS_CA_BUNDLE" in why


def test_no_hint_for_other_failures() -> None:
    assert hint("npm error code ETARGET\nnpm error notarget No matching version found for foo@9") == ""


def test_alternative_node_lockfile_is_checked_and_keys_the_environment(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """EXPORTCONF_NODE_PACKAGES (the tox.ini node120 env) swaps the harness's package.json + lockfile."""
    from conftest import ROOT

    from pytest_exportconf.node import lock_digest

    default = lock_digest()
    monkeypatch.setenv("EXPORTCONF_NODE_PACKAGES", str(tmp_path))
    with pytest.raises(NodeUnavailable, match="needs package.json and package-lock.json; missing package-lock.json"):
        (tmp_path / "package.json").write_text("{}")
        lock_digest()
    alt = ROOT / "matrix" / "node-ort120-tfjs420"
    monkeypatch.setenv("EXPORTCONF_NODE_PACKAGES", str(alt))
    assert lock_digest() != default  # its own Node environment, beside the default one
    lock = json.loads((alt / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/onnxruntime-node"]["version"] == "1.20.1"
