"""A built wheel, installed (not editable) in a fresh virtual environment, serves the chat with its CSS and JS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.config import REPO_ROOT

STATIC = REPO_ROOT / "rag" / "web" / "static"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A venv with the project's wheel installed, seeing this interpreter's packages for the dependencies.

    ``--system-site-packages`` would not do: run from a virtual environment it exposes the base
    interpreter's packages, not the ones installed in that environment.
    """
    work = tmp_path_factory.mktemp("wheel")
    run = {"check": True, "capture_output": True, "text": True}
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "--no-build-isolation", "-w", str(work)], **run)
    [wheel] = work.glob("rag_zh-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], **run)
    venv_python = str(venv / "bin" / "python")
    purelib = subprocess.run([venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], **run).stdout.strip()
    (Path(purelib) / "outer-site-packages.pth").write_text("\n".join(_site_dirs()) + "\n", encoding="utf-8")
    subprocess.run([venv_python, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], **run)
    return venv


def _site_dirs() -> list[str]:
    """The site-packages folders this interpreter imports from (a virtual environment's, then the base's)."""
    return [entry for entry in sys.path if Path(entry).name in ("site-packages", "dist-packages")]


def test_the_wheel_holds_every_subpackage_and_the_static_assets(wheel_venv, tmp_path):
    code = (
        "import rag, rag.index, rag.models, rag.qa, rag.evaluation, rag.web, rag.web.app as app; "
        "print(rag.__file__); print(app.STATIC_DIR)"
    )
    done = subprocess.run([str(wheel_venv / "bin" / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    package_file, static_dir = done.stdout.split()
    assert str(wheel_venv) in package_file, "the wheel's copy, not the checkout, must be imported"
    assert sorted(p.name for p in Path(static_dir).iterdir()) == ["citations.js", "style.css"]


def test_the_installed_wheel_serves_the_page_with_its_css_and_js(wheel_venv, tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "RAG_EMBED_MODEL": "fake:hashing",
        "RAG_LLM_BACKEND": "fake:scripted",
        "RAG_INDEX": str(tmp_path / "index"),
        "RAG_DATA_DIR": str(tmp_path / "data"),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    server = subprocess.Popen(
        [str(wheel_venv / "bin" / "rag"), "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        page = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
                    page = response.read().decode("utf-8")
                break
            except OSError:
                time.sleep(0.5)
        assert page, f"the server did not answer: {server.stderr.read().decode() if server.poll() is not None else ''}"
        css_rule = "a.rag-cite:hover"
        assert css_rule in (STATIC / "style.css").read_text(encoding="utf-8") and css_rule in page
        js_lines = (STATIC / "citations.js").read_text(encoding="utf-8").splitlines()
        js_line = next(line.strip() for line in js_lines if "window.ragCitations" in line)
        assert js_line in page.replace("\\n", "\n")
    finally:
        server.terminate()
        server.wait(timeout=30)
