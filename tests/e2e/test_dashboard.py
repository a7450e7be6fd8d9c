"""The dashboard lossforge points to: the ``mlflow ui`` command it prints, opened in headless Chromium, shows the
runs of the default store by name on the experiment's runs page.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_a_run_page_shows_its_dataset_and_plots_and_a_sweep_its_comparison(tmp_path: Path) -> None:
    from helpers import QUICK_RUN, compose_config, default_store_runs

    from lossforge.commands import compare
    from lossforge.training.run import train

    train(compose_config(*QUICK_RUN), base_dir=tmp_path)
    client, (run,) = default_store_runs(tmp_path)
    store = resolve_tracking_uri(None, base_dir=tmp_path)
    experiment = run.info.experiment_id
    parent = client.create_run(experiment, run_name="sweep", tags={"lossforge.sweep": "parent"}).info.run_id
    for seed in range(2):
        for loss, accuracy in (("cross_entropy", 0.9), ("focal", 0.95)):
            child = client.create_run(experiment, run_name=f"{loss}-{seed}", tags={"mlflow.parentRunId": parent})
            client.log_param(child.info.run_id, "loss.name", loss)
            client.log_param(child.info.run_id, "seed", str(seed))
            client.log_metric(child.info.run_id, "test/accuracy", accuracy + 0.001 * seed)
            client.set_terminated(child.info.run_id)
    assert compare.main([parent, "--tracking-uri", store, "--log", "--output", str(tmp_path / "c.png")]) == 0

    with serve(shlex.split(dashboard_command(store)), tmp_path, name="ui") as server:
        run_page = f"#/experiments/{experiment}/runs/{run.info.run_id}"
        rendered_text(server, run_page, tmp_path, ("digits",))  # the dataset inputs, by name
        rendered_text(server, f"{run_page}/artifacts/plots/loss.png", tmp_path, ("loss.png", "curves.png"))
        parent_page = f"#/experiments/{experiment}/runs/{parent}/artifacts/comparison/table.md"
        rendered_text(server, parent_page, tmp_path, ("table.md", "plot.png", "focal"))
