"""podkernel kernels where users run them: JupyterLab in a real browser, jupyter console, papermill."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pexpect
import pytest

from helpers import podkernel
from kernel_helpers import (
    DEBIAN_IMAGE,
    PYPI_IMAGE,
    ROOT,
    kernel_running_containers,
    warm_ups_done,
)

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DISPLAY_NAME = "Python in a container (podkernel)"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["cold", "warm", "remote"])
def jupyterlab(request, install, tmp_path):
    """A JupyterLab server on localhost with a podkernel kernel installed (cold, warm, or on another
    machine: the simulated remote host); yields its URL, the kernel's name and the kind."""
    kind = request.param
    warm = kind == "warm"
    there = request.getfixturevalue("remote").rootless if kind == "remote" else None  # a user's Podman there
    where = there.args() if there else []
    name = install(*(["--warm"] if warm else []), *where, "--display-name", DISPLAY_NAME, PYPI_IMAGE)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    server = subprocess.Popen(
        [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--allow-root",
            "--ServerApp.port_retries=0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "jupyterlab.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise AssertionError((tmp_path / "jupyterlab.log").read_text()) from None
            time.sleep(0.3)
    try:
        yield f"{base}/lab?token={token}", name, kind, there
    finally:
        # SIGTERM stops a Jupyter server at once, shutting its kernels down; SIGINT would ask
        # for a confirmation that never comes, and it would run on until the kill below.
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if warm:
            warm_ups_done()
            podkernel("remove", name, check=True)


def open_kernel_menu(page, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    page.locator(".lm-Menu-item:not(.lm-mod-hidden) .lm-Menu-itemLabel", has_text=item).first.click()


def run_cell(page, code: str) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").last
    cell.locator(".cm-content").click()
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)


def test_jupyterlab_in_a_browser(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    url, name, kind, there = jupyterlab
    warm = kind == "warm"
    running = there.containers if there else kernel_running_containers

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(url)
            card = page.locator(".jp-LauncherCard", has_text=DISPLAY_NAME).first
            expect(card).to_be_visible(timeout=60_000)
            card.click()
            wait_idle(page)
            time.sleep(2)  # let JupyterLab finish connecting the new session before the first execute

            run_cell(page, "import socket; kept = 'state'; print(6 * 7, socket.gethostname())")
            expect(page.locator(".jp-OutputArea-output", has_text="42")).to_be_visible(timeout=60_000)

            run_cell(page, "import time; time.sleep(120)")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='busy']", timeout=30_000)
            time.sleep(1)
            open_kernel_menu(page, "Interrupt Kernel")
            expect(page.locator(".jp-OutputArea-output", has_text="KeyboardInterrupt")).to_be_visible(timeout=30_000)
            wait_idle(page)

            for restart in (1, 2):  # the same server connection across restarts
                open_kernel_menu(page, "Restart Kernel")
                page.locator(".jp-Dialog .jp-mod-accept").click()
                wait_idle(page, timeout_ms=30_000)
                run_cell(page, f"print('kept' in globals(), 'after restart {restart}'); kept = 1")
                expect(page.locator(".jp-OutputArea-output", has_text=f"False after restart {restart}")).to_be_visible(
                    timeout=30_000
                )
                if warm:  # the restarted kernel runs in a container that was waiting for it
                    serving = kernel_running_containers()
                    assert serving and all("-warm-" in container for container in serving), serving
            page.screenshot(path=str(ARTIFACTS / f"jupyterlab-{kind}.png"))

            assert running()
            open_kernel_menu(page, "Shut Down Kernel")
            accept = page.locator(".jp-Dialog .jp-mod-accept")
            if accept.count():
                accept.click()
            deadline = time.monotonic() + 30
            while running() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert running() == []
        finally:
            page.screenshot(path=str(ARTIFACTS / f"jupyterlab-{kind}-last.png"))
            browser.close()


@pytest.mark.parametrize("image", [DEBIAN_IMAGE, PYPI_IMAGE])
def test_jupyter_console(install, image):
    """The first cell of three fresh console sessions in a row prints its output.

    The port relay connects a frontend's IOPub before its shell can be answered; without it
    jupyter console loses the first cell's output (about half the time under rootless Podman,
    3 in 40 with a kernel on the host itself).
    """
    name = install(image)
    for _ in range(3):
        console = pexpect.spawn(
            str(BIN / "jupyter"),
            ["console", "--simple-prompt", "--kernel", name],
            encoding="utf-8",
            timeout=120,
            dimensions=(40, 120),
        )
        try:
            console.expect(r"In \[1\]")  # and the first cell is typed at once
            console.sendline("print(6 * 7, 'from the console')")
            console.expect("42 from the console", timeout=30)
            console.expect(r"In \[2\]")
            console.sendline("exit")
            console.expect(pexpect.EOF)
        finally:
            console.close(force=True)


def test_papermill_parameterised_notebook(install, tmp_path):
    name = install(DEBIAN_IMAGE)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": name, "display_name": name, "language": "python"}
    parameters = nbformat.v4.new_code_cell("factor = 1")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell("print('answer', factor * 2)")]
    nbformat.write(notebook, tmp_path / "in.ipynb")
    subprocess.run(
        [
            str(BIN / "papermill"),
            str(tmp_path / "in.ipynb"),
            str(tmp_path / "out.ipynb"),
            "-k",
            name,
            "-p",
            "factor",
            "21",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    printed = "".join(output.get("text", "") for cell in executed.cells for output in cell.get("outputs", []))
    assert "answer 42" in printed
