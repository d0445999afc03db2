"""Drive a real JupyterLab in headless Debian Chromium with Playwright.

Used only by ``tests/test_browser.py``.  Three pieces:

* :func:`notebook_copy` writes a copy of a notebook with parameters-cell constants replaced
  (small demo data for the test);
* :class:`LabServer` starts ``python -m jupyter lab`` on a free localhost port with a random
  token and isolated settings, waits until it answers, and always stops it;
* :class:`LabNotebook` opens a notebook in the browser, runs all cells, finds an ipywidgets
  slider by its description, moves it with the keyboard like a person would, and reads what
  the widget shows (printed text, the figure image).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# No outside network here: keep Chromium from trying (and stalling on) Google services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--headless",
]


# --------------------------------------------------------------------------------------------
# Notebook copies with edited parameters
# --------------------------------------------------------------------------------------------
def notebook_copy(src, dst, **params):
    """Copy notebook *src* to *dst*, replacing ``NAME = ...`` lines in the ``parameters`` cell.

    Each keyword is a parameter name and its new Python value (written with ``repr``). A name
    that the parameters cell does not define is appended to it, so the override always applies.
    Outputs are cleared so the browser shows only what this run produces.
    """
    import nbformat

    nb = nbformat.read(str(src), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise AssertionError(f"{src}: expected exactly one cell tagged 'parameters', "
                             f"found {len(cells)}")
    lines = cells[0].source.splitlines()
    for name, value in params.items():
        pat = re.compile(rf"^{name}\s*=")
        new = f"{name} = {value!r}"
        hits = [i for i, line in enumerate(lines) if pat.match(line)]
        if hits:
            for i in hits:
                lines[i] = new
        else:
            lines.append(new)
    cells[0].source = "\n".join(lines)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dst))
    return Path(dst)


# --------------------------------------------------------------------------------------------
# JupyterLab server
# --------------------------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """preexec_fn: ask Linux to send SIGTERM to this child when the test process dies, even by
    SIGKILL, so that JupyterLab (which then stops its kernels) never outlives pytest."""
    parent = os.getppid()
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class LabServer:
    """A JupyterLab server on localhost, isolated in *workdir*; use as a context manager.

    Settings, workspaces, runtime files and IPython profile live under *workdir*, so the
    user's own JupyterLab settings neither leak in nor get changed. Windowing is switched off
    so every cell is in the page, and JupyterLab's news/update checks are off (no network).
    """

    def __init__(self, root_dir, workdir, python=sys.executable, start_timeout=120, extra_env=None):
        self.root_dir = Path(root_dir)
        self.extra_env = dict(extra_env or {})
        self.workdir = Path(workdir)
        self.python = python
        self.start_timeout = start_timeout
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log_path = self.workdir / "jupyterlab.log"

    # -- settings -------------------------------------------------------------------------
    def _write_settings(self):
        settings = self.workdir / "lab-settings"
        for rel, content in {
            "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
                "fetchNews": "false", "checkForUpdates": False},
        }.items():
            p = settings / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(content))
        return settings

    def env(self):
        env = dict(os.environ)
        # A non-interactive MPLBACKEND (Agg, set by test runs) would stop inline figures.
        env.pop("MPLBACKEND", None)
        env.update(
            JUPYTERLAB_SETTINGS_DIR=str(self._write_settings()),
            JUPYTERLAB_WORKSPACES_DIR=str(self.workdir / "lab-workspaces"),
            JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
            JUPYTER_CONFIG_DIR=str(self.workdir / "jupyter-config"),
            IPYTHONDIR=str(self.workdir / "ipython"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    # -- lifecycle ------------------------------------------------------------------------
    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.python, "-m", "jupyter", "lab", "--no-browser",
            "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI and these machines run as root
            cmd.append("--allow-root")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env(), cwd=str(self.root_dir),
                                     start_new_session=True,
                                     preexec_fn=(_die_with_parent if sys.platform == "linux"
                                                 else None))
        deadline = time.monotonic() + self.start_timeout
        url = f"{self.base}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer within {self.start_timeout} s:\n"
                           f"{self.log_tail()}")

    def stop(self):
        """Terminate, wait, then kill: JupyterLab (and its kernels) never outlive the test."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                # Shut the kernels down cleanly through the API first (they are child processes).
                try:
                    req = urllib.request.Request(f"{self.base}/api/shutdown?token={self.token}",
                                                 method="POST")
                    urllib.request.urlopen(req, timeout=5).close()
                    self.proc.wait(timeout=15)
                except Exception:
                    pass
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            # Anything left in the server's own process group (a stuck kernel) goes too.
            try:
                os.killpg(self.proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            self._log.close()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def api(self, path):
        with urllib.request.urlopen(f"{self.base}/api/{path}?token={self.token}", timeout=5) as r:
            return json.loads(r.read())

    def kernel_state(self, notebook_path):
        """Execution state of the kernel of *notebook_path*'s session, or None without one."""
        for sess in self.api("sessions"):
            if sess.get("path") == str(notebook_path) and sess.get("kernel"):
                return sess["kernel"].get("execution_state")
        return None

    def shutdown_kernels(self):
        """Delete every session (and its kernel), e.g. between two notebooks."""
        for sess in self.api("sessions"):
            url = f"{self.base}/api/sessions/{sess['id']}?token={self.token}"
            req = urllib.request.Request(url, method="DELETE")
            try:
                urllib.request.urlopen(req, timeout=30).close()
            except (urllib.error.URLError, OSError):
                pass

    def url(self, path="", workspace=None):
        """Lab URL opening *path*; a fresh *workspace* name keeps earlier tabs from coming back."""
        ws = f"workspaces/{workspace}/" if workspace else ""
        return f"{self.base}/lab/{ws}tree/{path}?token={self.token}"


# --------------------------------------------------------------------------------------------
# Browser side
# --------------------------------------------------------------------------------------------
def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


class LabNotebook:
    """One notebook open in JupyterLab in a Playwright *page*."""

    def __init__(self, page, server, path, artifacts):
        self.page = page
        self.server = server
        self.path = path
        self.artifacts = Path(artifacts)
        self.artifacts.mkdir(parents=True, exist_ok=True)

    # -- opening and running ----------------------------------------------------------------
    def open(self, timeout=120_000):
        """Open the notebook and wait until its kernel has started and is idle.

        If JupyterLab asks which kernel to use (it can, when the kernel list arrives late),
        the preselected one (this venv's python3) is accepted, as a user would.
        """
        page = self.page
        workspace = re.sub(r"\W", "-", Path(self.path).stem) + "-" + secrets.token_hex(3)
        page.goto(self.server.url(self.path, workspace), timeout=timeout)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout)
        deadline = time.monotonic() + timeout / 1000
        while time.monotonic() < deadline:
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count() and dialog.first.is_visible():
                dialog.first.click()
            state = self.server.kernel_state(self.path)
            if state == "idle" and self.kernel_status() == "idle":
                return self
            time.sleep(0.5)
        raise AssertionError(f"kernel for {self.path} not idle after {timeout / 1000:.0f} s "
                             f"(state {self.server.kernel_state(self.path)})")

    def kernel_status(self):
        ind = self.page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator")
        if ind.count():
            return ind.first.get_attribute("data-status")
        return None

    def wait_kernel_idle(self, timeout=90_000):
        self.page.wait_for_function(
            """() => { const i = document.querySelector('.jp-Notebook-ExecutionIndicator');
                       return i && i.getAttribute('data-status') === 'idle'; }""",
            timeout=timeout, polling=500)

    def run_all(self, timeout=420_000):  # generous: a loaded 2-core machine is slow
        """Run > Run All Cells from the menu bar, then wait until no cell is queued or running."""
        page = self.page
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        # Done when no prompt shows "[*]" (queued/running), the kernel is idle, and every code
        # cell has an execution count or an error stopped the run (later cells stay "[ ]").
        page.wait_for_function(
            """() => { const ps = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                                   .map(p => p.textContent);
                       const i = document.querySelector('.jp-Notebook-ExecutionIndicator');
                       if (!i || i.getAttribute('data-status') !== 'idle') return false;
                       if (ps.some(t => t.includes('*'))) return false;
                       const err = document.querySelector(
                           '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
                       return ps.every(t => /\\[\\d+\\]/.test(t)) || !!err; }""",
            timeout=timeout, polling=500)
        return self

    def errors(self):
        """Texts of error outputs (tracebacks) shown in the notebook."""
        loc = self.page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        texts = [loc.nth(i).inner_text() for i in range(loc.count())]
        return [t for t in texts
                if re.search(r"Traceback|Error\b", t) and "Warning" not in t.split("\n")[0]]

    def unexecuted_code_cells(self):
        """Code cells whose prompt has no execution count (skipped after an error)."""
        prompts = self.page.locator(".jp-CodeCell .jp-InputPrompt")
        return [i for i in range(prompts.count())
                if not re.search(r"\[\d+\]", prompts.nth(i).inner_text())]

    def screenshot(self, name, locator=None):
        path = self.artifacts / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path

    # -- widgets ----------------------------------------------------------------------------
    def loading_widgets(self):
        """Number of widget views still showing a placeholder (not rendered)."""
        return self.page.locator(".jp-OutputArea-output", has_text=re.compile(
            r"Loading widget|Error displaying widget|model not found")).count()

    def slider(self, description):
        """The ipywidgets slider whose description label matches the regex *description*."""
        return Slider(self, description)


class Slider:
    """An ipywidgets 8 IntSlider/FloatSlider in the page, found by its description."""

    def __init__(self, nb, description):
        self.nb = nb
        page = nb.page
        self.description = description
        label = page.locator(".widget-label", has_text=re.compile(description))
        self.root = page.locator(".widget-slider").filter(has=label)
        try:
            self.root.first.wait_for(timeout=30_000)
        except Exception as exc:  # not rendered: say what the page shows instead
            placeholder = r"Loading widget|Error displaying|Slider|VBox|HBox|interactive\("
            shown = [t[:300] for t in page.locator(".jp-OutputArea-output").all_inner_texts()
                     if re.search(placeholder, t)]
            raise AssertionError(f"no rendered slider labelled /{description}/; widget outputs "
                                 f"show: {shown}") from exc
        if self.root.count() != 1:
            raise AssertionError(f"expected one slider labelled /{description}/, "
                                 f"found {self.root.count()}")
        self.handle = self.root.locator(".noUi-handle")
        self.readout = self.root.locator(".widget-readout")
        # What the slider redraws: the Output widget beside it in its box (ipywidgets
        # ``interact`` or a VBox([slider, output])), else the whole cell output area.
        box = page.locator(".widget-vbox").filter(has=self.root).filter(
            has=page.locator(".widget-output"))
        cell = page.locator(".jp-Cell-outputArea").filter(has=self.root).first
        self.output_area = box.last.locator(".widget-output").first if box.count() else cell
        self.cell_output = cell

    def value(self):
        return float(self.readout.inner_text().strip())

    def bounds(self):
        """(min, max) of the slider, from the handle's ARIA attributes."""
        return (float(self.handle.get_attribute("aria-valuemin")),
                float(self.handle.get_attribute("aria-valuemax")))

    def press(self, key, times=1):
        """Focus the handle and press *key* (ArrowRight, ArrowLeft, PageUp, Home, End...)."""
        self.handle.focus()
        for _ in range(times):
            self.handle.press(key)
        return self

    def drag(self, fraction):
        """Drag the handle with the mouse to *fraction* (0..1) of the track, as a person would.

        With ``continuous_update=False`` the widget updates once, on release.
        """
        track = self.root.locator(".noUi-base").bounding_box()
        h = self.handle.bounding_box()
        mouse = self.nb.page.mouse
        mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
        mouse.down()
        mouse.move(track["x"] + fraction * track["width"], h["y"] + h["height"] / 2, steps=8)
        mouse.up()
        return self

    def wait_value(self, predicate, timeout=30_000):
        deadline = time.monotonic() + timeout / 1000
        while time.monotonic() < deadline:
            v = self.value()
            if predicate(v):
                return v
            time.sleep(0.2)
        raise AssertionError(f"slider /{self.description}/ stayed at {self.value()}")

    def output_text(self):
        """Text printed by the widget's callback (stdout streams in the same output area)."""
        return self.output_area.inner_text()

    def figure_sources(self):
        """The ``src`` (PNG data URI) of each figure image in the widget's output area."""
        imgs = self.output_area.locator("img")
        return [imgs.nth(i).get_attribute("src") for i in range(imgs.count())]

    def watch(self):
        """Start counting DOM changes in the widget's output area (see :meth:`wait_for_redraw`)."""
        self.output_area.evaluate(
            """el => { window.__hea_mut = 0; window.__hea_last = Date.now();
                       if (window.__hea_obs) window.__hea_obs.disconnect();
                       window.__hea_obs = new MutationObserver(() => {
                           window.__hea_mut++; window.__hea_last = Date.now(); });
                       window.__hea_obs.observe(el, {childList: true, subtree: true,
                                                     characterData: true, attributes: true}); }""")

    def wait_for_redraw(self, quiet_ms=1500, timeout=120_000):
        """After :meth:`watch` and a slider move: wait until the output area has changed, the
        kernel is idle, and nothing has changed for *quiet_ms* (the callback has finished)."""
        page = self.nb.page
        try:
            page.wait_for_function(
                f"""() => {{ const i = document.querySelector('.jp-Notebook-ExecutionIndicator');
                            return window.__hea_mut > 0
                                   && i && i.getAttribute('data-status') === 'idle'
                                   && Date.now() - window.__hea_last > {quiet_ms}; }}""",
                timeout=timeout, polling=250)
        finally:
            page.evaluate("() => window.__hea_obs && window.__hea_obs.disconnect()")
        return self.output_text()

    def move(self, action, timeout=120_000):
        """Move the slider, wait for the new value and the widget's redraw.

        *action* is a key to press on the focused handle ("ArrowRight", "PageUp", "End"...) or
        ``"drag:F"`` to drag the handle to fraction F of the track.
        Returns ``(value, output_text, figure_sources)`` after the redraw.
        """
        v0 = self.value()
        self.watch()
        if action.startswith("drag:"):
            self.drag(float(action.split(":", 1)[1]))
        else:
            self.press(action)
        v1 = self.wait_value(lambda v: v != v0)
        text = self.wait_for_redraw(timeout=timeout)
        return v1, text, self.figure_sources()


def count_in(text, noun="clusters?"):
    """The count reported in *text* as "N clusters: 3" / "clusters = 3" or "3 clusters" (last one).

    Returns None when *text* reports no count. *noun* is a regex (e.g. "components?").
    """
    pat = rf"(?<![A-Za-z]){noun}\s*[:=]\s*(\d+)|(\d+)\s+{noun}\b"
    found = re.findall(pat, text, flags=re.IGNORECASE)
    return int("".join(found[-1])) if found else None
