"""The dashboard lossforge points to: the ``mlflow ui`` command it prints, opened in headless Chromium, shows the
runs of the default store by name on the experiment's runs page.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import MlflowServer, serve

from lossforge.commands.ui import TRAINING_VIEW
from lossforge.tracking import dashboard_command, default_artifact_location, mlflow_run, resolve_tracking_uri

CHROMIUM = shutil.which("chromium")
RUN_NAMES = ("dashboard-focal-gamma2", "dashboard-cross-entropy")
ATTEMPTS = 3  # a render that lost the race against a busy server is retried, never waited on unboundedly

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("default_store"),
    pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` on PATH (Debian: apt-get install chromium)"),
]


def render(url: str, directory: Path) -> tuple[str, Path, str]:
    """The DOM of ``url`` once the page's scripts and requests settle, a screenshot of it, chromium's stderr."""
    assert CHROMIUM is not None
    screenshot = directory / "dashboard.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # the sandbox cannot run as root in a container; the page is our own local server
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={directory / 'chromium-profile'}",
        "--hide-scrollbars",
        "--window-size=1400,900",
        # The UI is a React app that fetches the runs after load: let it run up to 15 s of virtual time
        # (network waits pause that clock) before the DOM is dumped and the screenshot taken.
        "--virtual-time-budget=15000",
        f"--screenshot={screenshot}",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return result.stdout, screenshot, result.stderr


def visible_text(dom: str) -> str:
    without_code = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", without_code)).strip()


def test_mlflow_ui_shows_the_runs_by_name(tmp_path: Path) -> None:
    store = resolve_tracking_uri(None, base_dir=tmp_path)  # the default store: <tmp>/outputs/mlflow.db
    run_ids: dict[str, str] = {}
    for name in RUN_NAMES:
        with mlflow_run(
            tracking_uri=store,
            experiment="lossforge",
            run_name=name,
            tags={"loss": name},
            artifact_location=default_artifact_location(None, store, tmp_path),
        ) as run:
            run.log_metrics({"val/accuracy": 0.5}, step=0)
            run_ids[name] = run.run_id
    experiment_id = run.experiment_id

    # Exactly the command lossforge prints after a run (`lossforge ui`, on 127.0.0.1), on a port we chose.
    printed = shlex.split(dashboard_command(store))
    assert printed[0] == sys.executable and printed[1:4] == ["-m", "lossforge", "ui"]
    with serve(printed, tmp_path, name="ui") as server:
        # `#/experiments/<id>` opens the experiment's overview; the runs table lives under `/runs`.
        page = f"{server.url}/#/experiments/{experiment_id}/runs"
        for _ in range(ATTEMPTS):
            dom, screenshot, chromium_log = render(page, tmp_path)
            if all(name in dom for name in RUN_NAMES):
                break
        missing = [name for name in RUN_NAMES if name not in dom]
        assert not missing, failure_report(page, missing, dom, chromium_log, server)
        # The experiment's own page in the view lossforge ui links to: MLflow 3's training-runs view (the runs
        # by name); without the parameter MLflow 3.17 opens its GenAI overview, which lists no runs.
        rendered_text(server, f"#/experiments/{experiment_id}{TRAINING_VIEW}", tmp_path, RUN_NAMES)

    for name, run_id in run_ids.items():  # each row links to its run's page
        assert f'href="#/experiments/{experiment_id}/runs/{run_id}"' in dom, f"no link to run {name} ({run_id})"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot at {screenshot}"


def failure_report(page: str, missing: list[str], dom: str, chromium_log: str, server: MlflowServer) -> str:
    # Headless chromium in a container always complains that there is no D-Bus; that is never the problem.
    chromium_errors = "\n".join(line for line in chromium_log.splitlines() if "dbus" not in line.lower())
    return (
        f"{page} did not show runs {missing} after {ATTEMPTS} renders.\n"
        f"Page text: {visible_text(dom)[:1500]!r}\n"
        f"Chromium stderr (tail):\n{chromium_errors[-1500:]}\n"
        f"Server log (tail):\n{server.log_tail()}"
    )


def rendered_text(server: MlflowServer, page: str, tmp_path: Path, expected: tuple[str, ...]) -> str:
    """The visible text of ``page`` once it shows every ``expected`` string (up to ATTEMPTS renders)."""
    text = ""
    for _ in range(ATTEMPTS):
        dom, _, _ = render(f"{server.url}/{page}", tmp_path)
        text = visible_text(dom)
        if all(word in text for word in expected):
            break
    missing = [word for word in expected if word not in text]
    assert not missing, f"{page} did not show {missing}. Page text: {text[:1500]!r}\nServer log:\n{server.log_tail()}"
    return text


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on its
    fd 3, replies on fd 4, each a NUL-terminated JSON message), so that a test can ask where an element is drawn
    — what `--dump-dom` cannot tell — with no client library."""

    def __init__(self, directory: Path, width: int, height: int) -> None:
        assert CHROMIUM is not None
        to_chromium, self._commands = os.pipe()
        self._replies, from_chromium = os.pipe()
        self.log = directory / "chromium-devtools.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",  # the sandbox cannot run as root in a container; the page is our own server
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    f"--user-data-dir={directory / 'chromium-devtools-profile'}",
                    "--hide-scrollbars",
                    f"--window-size={width},{height}",
                    "--remote-debugging-pipe",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(3, 4),
                preexec_fn=lambda: _as_fds_3_and_4(to_chromium, from_chromium),
            )
        os.close(to_chromium)
        os.close(from_chromium)
        self._next, self._buffer = 0, b""
        target = self._call("Target.createTarget", None, url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", None, targetId=target, flatten=True)["sessionId"]

    def _call(self, method: str, session: str | None, **params: object) -> dict[str, Any]:
        self._next += 1
        message: dict[str, object] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._replies, 1 << 16)
                assert chunk, f"chromium closed its DevTools pipe; its log:\n{self.log.read_text()[-2000:]}"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return dict(reply["result"])

    def page(self, method: str, **params: object) -> dict[str, Any]:
        """A DevTools command to the page."""
        return self._call(method, self._session, **params)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        return self.page("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str, until: str, timeout_s: float = 60.0) -> str:
        """Go to `url`; the page's visible text once it contains `until` (or when `timeout_s` is up)."""
        self.page("Page.navigate", url=url)
        deadline, text = time.monotonic() + timeout_s, ""
        while time.monotonic() < deadline:
            text = self.evaluate("document.body ? document.body.innerText : ''") or ""
            if until in text:
                time.sleep(1.0)  # the last requests of the page (images, the remaining panels) settle
                return str(self.evaluate("document.body.innerText"))
            time.sleep(0.25)
        return str(text)

    def shown_on_first_screen(self, words: str, within_s: float = 0.0) -> list[str]:
        """The visible elements whose own text contains `words` and that lie inside the window without scrolling:
        each as `<tag>: <text>` (empty when `words` is only below the fold, hidden, or nowhere) — asked again
        for up to `within_s` seconds while the page is still laying itself out."""
        deadline = time.monotonic() + within_s
        while True:
            found = self._shown_now(words)
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.25)

    def _shown_now(self, words: str) -> list[str]:
        script = f"""(() => {{
            const found = [];
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            while (walker.nextNode()) {{
                const node = walker.currentNode, element = node.parentElement;
                if (!node.textContent.includes({json.dumps(words)}) || !element) continue;
                const box = element.getBoundingClientRect(), style = getComputedStyle(element);
                const inside = box.width > 0 && box.height > 0 && box.top >= 0 && box.bottom <= innerHeight
                    && box.left >= 0 && box.right <= innerWidth;
                if (inside && style.visibility !== "hidden" && style.display !== "none" && style.opacity !== "0")
                    found.push(element.tagName + ": " + element.innerText.slice(0, 120));
            }}
            return found;
        }})()"""
        return list(self.evaluate(script))

    def resize(self, width: int, height: int) -> None:
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def screenshot(self, path: Path, *, x: int = 0, y: int = 0, width: int, height: int, scale: float = 1.0) -> Path:
        """A PNG of the window's region from (`x`, `y`), `width` × `height`, scaled by `scale`."""
        clip = {"x": x, "y": y, "width": width, "height": height, "scale": scale}
        path.write_bytes(base64.b64decode(self.page("Page.captureScreenshot", format="png", clip=clip)["data"]))
        return path

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


def _as_fds_3_and_4(to_chromium: int, from_chromium: int) -> None:
    """In the child: the pipe's ends as fds 3 and 4 (duplicated first: either may already be 3 or 4)."""
    read, write = os.dup(to_chromium), os.dup(from_chromium)
    os.dup2(read, 3)
    os.dup2(write, 4)


#: Test accuracy per seed: focal above cross_entropy on every seed, hinge the same up to noise; 8 seeds are
#: enough for a verdict on two Holm-adjusted comparisons.
ACCURACY = {
    "cross_entropy": [0.900, 0.910, 0.905, 0.895, 0.908, 0.902, 0.899, 0.906],
    "focal": [0.951, 0.962, 0.955, 0.948, 0.960, 0.953, 0.950, 0.957],
    "hinge": [0.902, 0.907, 0.906, 0.897, 0.906, 0.901, 0.901, 0.903],
}
#: Where the docs' screenshot of a sweep's page goes (docs/comparing.md, "The dashboard").
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard-sweep.png"


def test_a_run_page_shows_its_dataset_and_plots_and_a_sweep_page_its_winner_on_the_first_screen(
    tmp_path: Path,
) -> None:
    from helpers import QUICK_RUN, compose_config, default_store_runs
    from mlflow.entities import Metric, Param

    from lossforge.evaluation.compare import compare
    from lossforge.training.run import train

    train(compose_config(*QUICK_RUN), base_dir=tmp_path)
    client, (run,) = default_store_runs(tmp_path)
    store = resolve_tracking_uri(None, base_dir=tmp_path)
    experiment = run.info.experiment_id
    parent = client.create_run(
        experiment,
        run_name="sweep loss=cross_entropy,focal,hinge seed=0,1,2,3,4,5,6,7",
        tags={"lossforge.sweep": "parent"},
    ).info.run_id
    now = int(time.time() * 1000)
    for loss, values in ACCURACY.items():
        for seed, accuracy in enumerate(values):
            child = client.create_run(experiment, run_name=f"{loss}-{seed}", tags={"mlflow.parentRunId": parent})
            client.log_batch(
                child.info.run_id,
                metrics=[Metric("test/accuracy", accuracy, now, 0), Metric("test/f1_macro", accuracy - 0.01, now, 0)],
                params=[Param("loss.name", loss), Param("seed", str(seed))],
            )
            client.set_terminated(child.info.run_id)
    client.set_terminated(parent)
    compare(parent, tracking_uri=store, mean_over="seed", log=True)  # what `lossforge compare --log` writes

    # Exactly the command a sweep prints at its end, and the URL that command prints.
    printed = shlex.split(dashboard_command(store, run_id=parent))
    assert printed[-2:] == ["--run", parent]
    with serve(printed, tmp_path, name="ui") as server:
        url = re.search(r"(http://127\.0\.0\.1:\d+/#\S+)", server.log.read_text())
        assert url, f"lossforge ui printed no URL:\n{server.log_tail()}"
        assert url.group(1) == f"{server.url}/#/experiments/{experiment}/runs/{parent}{TRAINING_VIEW}"
        browser = Browser(tmp_path, 1400, 900)
        try:
            text = browser.open(url.group(1), until="Winner: focal")
            assert "Winner: focal" in text, f"{url.group(1)} shows: {text[:1500]!r}\n{server.log_tail()}"
            # Still the training view once the page has loaded: MLflow 3 redirects a link without `workflowType`
            # (e.g. `#/experiments/1`) to its GenAI overview (`…/overview/usage?workflowType=genai`).
            assert browser.evaluate("location.href").endswith(f"/runs/{parent}{TRAINING_VIEW}")
            # A laptop's window: MLflow stacks the page in one column; the winner tag is on the first screen.
            first_screen = browser.shown_on_first_screen("focal", within_s=10)
            assert first_screen, f"the winner is not on the first screen at 1400x900: {text[:1500]!r}"
            # A desktop's window: the description — heading, verdict table and figure — opens the page.
            browser.resize(1920, 1080)
            assert browser.shown_on_first_screen("Winner: focal", within_s=10), "no heading on the first screen"
            assert browser.shown_on_first_screen("test/accuracy ↑")  # the verdict table's first row
            figure = f"get-artifact?path=comparison/plot.png&run_uuid={parent}"
            loaded = f"[...document.images].filter(i => i.src.includes({json.dumps(figure)}) && i.naturalWidth > 0)"
            assert browser.evaluate(f"{loaded}.length") >= 1, "the comparison figure did not load in the description"
            # The page without MLflow's side bars (its navigation, its assistant), as the docs show it.
            shot = browser.screenshot(tmp_path / "sweep.png", x=195, width=1240, height=760, scale=0.75)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("LOSSFORGE_UPDATE_DOCS_SCREENSHOT"):  # refresh the docs' picture
                shutil.copyfile(shot, DOCS_SCREENSHOT)
        finally:
            browser.close()
        run_page = f"#/experiments/{experiment}/runs/{run.info.run_id}"
        rendered_text(server, run_page, tmp_path, ("digits",))  # the dataset inputs, by name
        rendered_text(server, f"{run_page}/artifacts/plots/loss.png", tmp_path, ("loss.png", "curves.png"))
        parent_page = f"#/experiments/{experiment}/runs/{parent}/artifacts/comparison/table.md"
        rendered_text(server, parent_page, tmp_path, ("table.md", "plot.png", "focal"))
