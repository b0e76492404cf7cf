"""JupyterLab on localhost, driven by headless Chromium: what the browser tests need.

Used by ``tests/test_browser.py`` and ``benchmarks/bench_browser.py``:

- :func:`jupyter_lab`: a private JupyterLab server (free port, random token, settings, runtime,
  data, workspace and checkpoint folders in a temporary directory, autosave off: nothing is
  written into the repository), shut down and its whole process tree ended on exit.
- :func:`chromium`: Debian's Chromium (``/usr/bin/chromium``) through Playwright, headless,
  kept off the network, with a fresh profile.
- :class:`NotebookPage`: open a notebook, run all its cells as a student would ("Run All
  Cells"), find the explorers (widget areas holding a slider and a picture), move a slider with
  the keyboard and time how long the new picture takes to appear.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "screenshots"  # git-ignored

# Headless, no sandbox (CI runs as root), and nothing that reaches the network on its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)
CHROMIUM_MISSING = (
    f"Chromium is not installed at {CHROMIUM}: the browser tests need it. "
    "Install it with `apt-get update && apt-get install -y chromium` (Debian/Ubuntu; "
    "`bash .ci/run` does this), or deselect them with `-m 'not browser'`."
)

# User settings for the private server: never write the notebook being run back to disk, and
# no news or update checks (no network, no pop-ups over the page).
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
}

SERVER_START_S = 120.0  # a busy 2-core machine takes a while to import JupyterLab
SERVER_STOP_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: where it listens and the token that lets the test in."""

    url: str  # http://127.0.0.1:PORT/
    token: str
    root_dir: Path
    process: subprocess.Popen
    log_path: Path

    def lab_url(self, notebook: Path) -> str:
        relative = notebook.resolve().relative_to(self.root_dir.resolve()).as_posix()
        return f"{self.url}lab/tree/{relative}?token={self.token}&reset"

    def api(self, path: str, method: str = "GET") -> bytes:
        request = urllib.request.Request(f"{self.url}api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _lab_command(port: int, root_dir: Path) -> list[str]:
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands from the test
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


@contextlib.contextmanager
def jupyter_lab(root_dir: Path = ROOT) -> Iterator[LabServer]:
    """Start JupyterLab serving `root_dir`; on exit shut it down and end every process it started."""
    import psutil  # comes with ipykernel

    with tempfile.TemporaryDirectory(prefix="lab-test-") as tmp:
        tmp = Path(tmp)
        settings_dir = tmp / "settings"
        for name, values in LAB_SETTINGS.items():
            path = settings_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        token = secrets.token_hex(24)
        config_dir = tmp / "config"  # the token goes here, not on the command line (ps shows that)
        config_dir.mkdir()
        (config_dir / "jupyter_server_config.json").write_text(json.dumps({
            "IdentityProvider": {"token": token},
            # Opening a notebook saves a checkpoint copy: keep it out of the repository.
            "FileCheckpoints": {"root_dir": str(tmp / "checkpoints")},
        }))
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_DATA_DIR": str(tmp / "data"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
            "IPYTHONDIR": str(tmp / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
        }
        log_path = tmp / "jupyterlab.log"
        process = None
        descendants: dict[int, psutil.Process] = {}
        try:
            with log_path.open("wb") as log:
                for _attempt in range(3):  # another program may take the free port first
                    port = free_port()
                    process = subprocess.Popen(_lab_command(port, root_dir), cwd=root_dir,
                                               env=env, stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True,
                                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
                    server = LabServer(f"http://127.0.0.1:{port}/", token, Path(root_dir), process,
                                       log_path)
                    if _wait_until_up(server):
                        break
                    _end_process_group(process)
                else:
                    raise RuntimeError(f"JupyterLab did not start:\n{server.log()[-3000:]}")
                try:
                    yield server
                finally:
                    # Kernels run in sessions of their own: note them now, to end any left over.
                    with contextlib.suppress(psutil.Error):
                        for child in psutil.Process(process.pid).children(recursive=True):
                            descendants[child.pid] = child
        finally:
            if process is not None:
                _stop_server(server, descendants)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the test process dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_until_up(server: LabServer) -> bool:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            server.api("status")
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    return False


def _stop_server(server: LabServer, descendants: dict) -> None:
    """Ask the server to shut down (it stops its kernels), then make sure nothing is left."""
    import psutil

    if server.process.poll() is None:
        with contextlib.suppress(Exception):
            server.api("shutdown", method="POST")
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(SERVER_STOP_S)
    _end_process_group(server.process)
    alive = [p for p in descendants.values() if _running(p)]
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _gone, alive = psutil.wait_procs(alive, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=5)


def _running(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _end_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL whatever has not gone after a few seconds."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait_s)
            break
    with contextlib.suppress(ProcessLookupError, PermissionError):  # stray members of the group
        os.killpg(process.pid, signal.SIGKILL)


# ----------------------------------------------------------------------------- the browser


@contextlib.contextmanager
def chromium(viewport: tuple[int, int] = (1400, 1200)):
    """Headless Debian Chromium with a fresh profile: a Playwright BrowserContext."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise FileNotFoundError(CHROMIUM_MISSING)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as pw:
        # launch_persistent_context is Playwright's way of passing --user-data-dir.
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_FLAGS),
            viewport={"width": viewport[0], "height": viewport[1]})
        try:
            yield context
        finally:
            context.close()


# ----------------------------------------------------------------------------- a notebook page

# In-page helpers, installed once per page. An explorer is a cell output that holds at least one
# slider and a picture (<img> or <canvas>); the picture's "signature" is its sources.
PAGE_HELPERS = r"""
() => {
  if (window.__explorerTest) return;
  const notebookPanel = (path) =>
    Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === path);
  const pictures = (region) => Array.from(region.querySelectorAll('img, canvas'));
  const signature = (region) => pictures(region)
    .map(e => e.tagName === 'IMG' ? e.src : e.toDataURL()).join('|');
  const sha256 = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
    .map(b => b.toString(16).padStart(2, '0')).join('');
  window.__explorerTest = {
    notebookPanel,
    kernelMessages: [],
    kernelDeaths: [],
    watch(path) {  // kernel restarts, and every iopub message that reports an error or writes to stderr
      const panel = notebookPanel(path);
      panel.sessionContext.statusChanged.connect((_, status) => {
        if (['dead', 'restarting', 'autorestarting'].includes(status)) this.kernelDeaths.push(status);
      });
      panel.sessionContext.iopubMessage.connect((_, msg) => {
        const type = msg.header.msg_type;
        if (type === 'error') {
          this.kernelMessages.push(`${msg.content.ename}: ${msg.content.evalue}\n` +
                                   msg.content.traceback.join('\n'));
        } else if (type === 'stream' && msg.content.name === 'stderr') {
          this.kernelMessages.push(msg.content.text);
        }
      });
    },
    runAll(path) {
      const state = {done: false, result: null, error: null};
      this.run = state;
      window.jupyterapp.commands.execute('notebook:run-all-cells')
        .then(r => { state.result = r; }, e => { state.error = String(e); })
        .finally(() => { state.done = true; });
    },
    kernelStatus(path) {
      const session = notebookPanel(path).sessionContext.session;
      return session && session.kernel ? session.kernel.status : 'no kernel';
    },
    runFinished(path) {  // every cell has run, or the kernel has died (then some never will)
      const status = this.kernelStatus(path);
      if (this.kernelDeaths.length || ['dead', 'restarting', 'autorestarting'].includes(status)) {
        return true;
      }
      return this.run.done && status === 'idle';
    },
    cellReport(path) {  // per code cell: execution count and the outputs that report errors
      const panel = notebookPanel(path);
      const cells = [];
      for (let i = 0; i < panel.content.widgets.length; i++) {
        const model = panel.content.widgets[i].model;
        if (model.type !== 'code') continue;
        const outputs = model.outputs.toJSON();
        const problems = outputs.filter(o => o.output_type === 'error' ||
            (o.output_type === 'stream' && o.name === 'stderr' && /Error|Traceback/.test(
              Array.isArray(o.text) ? o.text.join('') : o.text)))
          .map(o => o.output_type === 'error' ? `${o.ename}: ${o.evalue}` :
               (Array.isArray(o.text) ? o.text.join('') : o.text));
        cells.push({index: i, executionCount: model.executionCount, problems,
                    widgets: outputs.filter(o => o.data &&
                      o.data['application/vnd.jupyter.widget-view+json']).length});
      }
      return cells;
    },
    markExplorers() {  // top-level cell outputs with a slider and a picture
      const found = Array.from(document.querySelectorAll(
          '.jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output'))
        .filter(r => r.querySelector('.widget-slider .noUi-handle') && pictures(r).length > 0);
      found.forEach((r, i) => r.setAttribute('data-explorer', String(i)));
      return found.length;
    },
    picturesReady(region) {
      return pictures(region).every(e => e.tagName !== 'IMG' || (e.complete && e.naturalWidth > 0));
    },
    async pictureDigest(region) {  // what the picture shows: a hash of its bytes
      const parts = [];
      for (const e of pictures(region)) {
        if (e.tagName === 'IMG') {
          parts.push(await sha256(await (await fetch(e.src)).arrayBuffer()));
        } else {
          parts.push(await sha256(new TextEncoder().encode(e.toDataURL())));
        }
      }
      return parts.join('|');
    },
    arm(region, handle) {
      // Time from the key press on the slider handle to the new picture decoded and painted.
      const state = {start: null, before: signature(region), last: signature(region),
                     changes: [], shown: []};
      this.move = state;
      handle.addEventListener('keydown', () => { state.start = performance.now(); },
                              {capture: true, once: true});
      const observer = new MutationObserver(async () => {
        const now = signature(region);
        if (now === state.last) return;
        state.last = now;
        state.changes.push(performance.now());
        await Promise.all(pictures(region).filter(e => e.tagName === 'IMG')
          .map(e => e.decode().catch(() => null)));
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        if (state.last === now) state.shown.push(performance.now());
      });
      observer.observe(region, {subtree: true, childList: true, attributes: true,
                                attributeFilter: ['src']});
      state.observer = observer;
    },
    settled(quietMs) {
      const s = this.move;
      if (s.start === null || s.shown.length === 0) return false;
      const lastEvent = Math.max(s.changes[s.changes.length - 1], s.shown[s.shown.length - 1]);
      return s.shown[s.shown.length - 1] >= s.changes[s.changes.length - 1]
        && performance.now() - lastEvent > quietMs;
    },
    moveResult() {
      const s = this.move;
      s.observer.disconnect();
      return {start: s.start, changes: s.changes.length,
              first_ms: s.shown.length ? s.shown[0] - s.start : null,
              last_ms: s.shown.length ? s.shown[s.shown.length - 1] - s.start : null,
              changed: s.last !== s.before};
    },
  };
}
"""

ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
RUN_ALL_TIMEOUT_S = 900.0  # nbmake allows a notebook 600 s; the browser adds its own overhead
MOVE_TIMEOUT_S = 60.0
SETTLE_MS = 500  # a move is over once the picture has not changed for this long


@dataclass
class Slider:
    label: str
    handle: object  # Playwright Locator of the noUiSlider handle
    value: float
    minimum: float
    maximum: float


@dataclass
class Move:
    slider: str
    key: str
    latency_ms: float  # key press -> the final new picture decoded and painted
    first_ms: float  # key press -> the first new picture (equal unless the picture changed twice)
    num_pictures: int


class NotebookPage:
    """One notebook open in JupyterLab in a browser page."""

    def __init__(self, context, server: LabServer, notebook: Path) -> None:
        self.server = server
        self.notebook = notebook
        self.path = notebook.resolve().relative_to(server.root_dir.resolve()).as_posix()
        self.page = context.new_page()
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    def close(self) -> None:
        """Shut the notebook's kernel down (it holds the lesson's memory) and close the page."""
        with contextlib.suppress(Exception):
            self.page.evaluate(
                """async path => { const p = window.__explorerTest.notebookPanel(path);
                                   if (p) await p.sessionContext.shutdown(); }""", self.path)
        self.page.close()

    def open(self, timeout_s: float = SERVER_START_S) -> None:
        """Load JupyterLab on the notebook and wait for its kernel to be idle."""
        page = self.page
        page.goto(self.server.lab_url(self.notebook), timeout=timeout_s * 1e3)
        page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout_s * 1e3)
        page.evaluate(PAGE_HELPERS)
        page.wait_for_function(
            """path => { const p = window.__explorerTest.notebookPanel(path);
                         const k = p && p.context.isReady && p.sessionContext.session
                                   && p.sessionContext.session.kernel;
                         return k && k.status === 'idle'; }""",
            arg=self.path, timeout=timeout_s * 1e3)
        page.evaluate("path => window.__explorerTest.watch(path)", self.path)

    def run_all_cells(self, timeout_s: float = RUN_ALL_TIMEOUT_S) -> float:
        """JupyterLab's "Run All Cells"; returns the seconds until every cell has run."""
        start = time.perf_counter()
        self.page.evaluate("path => window.__explorerTest.runAll(path)", self.path)
        self.page.wait_for_function("path => window.__explorerTest.runFinished(path)", arg=self.path,
                                    timeout=timeout_s * 1e3, polling=250)
        return time.perf_counter() - start

    def kernel_died(self) -> bool:
        """Whether the kernel died (or restarted) during "Run All Cells"."""
        return self.page.evaluate("() => window.__explorerTest.kernelDeaths.length > 0")

    def cell_report(self) -> list[dict]:
        return self.page.evaluate("path => window.__explorerTest.cellReport(path)", self.path)

    def kernel_messages(self) -> list[str]:
        """Errors and stderr text the kernel sent since the notebook opened (colour codes removed)."""
        return [ANSI_CODES.sub("", text)
                for text in self.page.evaluate("() => window.__explorerTest.kernelMessages")]

    def error_texts(self) -> list[str]:
        """Error outputs and stderr shown in the page, and widgets that failed to display.

        textContent, not innerText: cells scrolled out of view are not rendered (JupyterLab's
        default "content visibility" windowing) and their innerText is empty."""
        return self.page.evaluate(
            """() => {
              const found = [];
              for (const e of document.querySelectorAll(
                  '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')) {
                if (/Error|Traceback/.test(e.textContent)) found.push(e.textContent.slice(0, 2000));
              }
              for (const e of document.querySelectorAll('.jp-OutputArea-output')) {
                if (/Error displaying widget|Failed to load model class/.test(e.textContent))
                  found.push(e.textContent.slice(0, 500));
              }
              return found;
            }""")

    def explorers(self, timeout_s: float = 120.0) -> list:
        """Locators of the explorers once their pictures have loaded (waits for the widgets)."""
        deadline = time.monotonic() + timeout_s
        while True:
            count = self.page.evaluate("() => window.__explorerTest.markExplorers()")
            regions = [self.page.locator(f'[data-explorer="{i}"]') for i in range(count)]
            if count and all(self.page.evaluate("r => window.__explorerTest.picturesReady(r)",
                                                r.element_handle()) for r in regions):
                return regions
            if time.monotonic() > deadline:
                return regions
            self.page.wait_for_timeout(250)

    def sliders(self, region) -> list[Slider]:
        found = []
        for box in region.locator(".widget-slider").all():
            handle = box.locator(".noUi-handle").first
            if handle.count() == 0 or box.locator(".noUi-target[disabled]").count():
                continue
            found.append(Slider(
                label=box.locator(".widget-label").first.text_content().strip(), handle=handle,
                value=float(handle.get_attribute("aria-valuenow")),
                minimum=float(handle.get_attribute("aria-valuemin")),
                maximum=float(handle.get_attribute("aria-valuemax"))))
        return found

    def picture_digest(self, region) -> str:
        return self.page.evaluate("r => window.__explorerTest.pictureDigest(r)", region.element_handle())

    def move(self, region, slider: Slider, key: str, timeout_s: float = MOVE_TIMEOUT_S) -> Move:
        """Press `key` on the focused slider handle; wait for the picture to change and settle.

        Raises TimeoutError if the picture does not change within `timeout_s`.
        """
        slider.handle.focus()
        self.page.evaluate("([r, h]) => window.__explorerTest.arm(r, h)",
                           [region.element_handle(), slider.handle.element_handle()])
        self.page.keyboard.press(key)
        try:
            self.page.wait_for_function(f"() => window.__explorerTest.settled({SETTLE_MS})",
                                        timeout=timeout_s * 1e3, polling="raf")
        except Exception as error:  # Playwright's TimeoutError
            result = self.page.evaluate("() => window.__explorerTest.moveResult()")
            messages = "\n".join(self.kernel_messages()[-5:])
            raise TimeoutError(f"pressing {key} on slider {slider.label!r} did not change the picture "
                               f"within {timeout_s:.0f} s ({result}); last kernel errors:\n{messages}"
                               ) from error
        result = self.page.evaluate("() => window.__explorerTest.moveResult()")
        return Move(slider.label, key, result["last_ms"], result["first_ms"], result["changes"])


def first_key(slider: Slider) -> str:
    """The arrow key that moves this slider one step away from the end it sits at."""
    return "ArrowLeft" if slider.value >= slider.maximum else "ArrowRight"


def other_key(key: str) -> str:
    return "ArrowLeft" if key == "ArrowRight" else "ArrowRight"


def time_moves(page: NotebookPage, region, slider: Slider, num_moves: int, key: str) -> list[Move]:
    """`num_moves` one-step moves, alternately back and forth starting with `key`: every move
    changes the value, and so (for an explorer worth the name) the picture."""
    moves = []
    for _ in range(num_moves):
        moves.append(page.move(region, slider, key))
        key = other_key(key)
    return moves
