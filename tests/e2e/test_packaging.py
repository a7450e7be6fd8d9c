"""lossforge works from a wheel installed elsewhere, not only from a checkout: the configs ship inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import QUICK_RUN, child_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("lossforge-*.whl")
    return built


def test_the_wheel_ships_every_config_and_the_search_path_plugin(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {name.removeprefix("lossforge/conf/") for name in names if name.startswith("lossforge/conf/")}
    in_checkout = {str(path.relative_to(ROOT / "conf")) for path in (ROOT / "conf").rglob("*.yaml")}
    assert in_checkout <= shipped
    assert "hydra_plugins/lossforge_searchpath/lossforge_searchpath.py" in names
    assert not any(name.startswith("tests/") for name in names)


def test_a_run_from_the_installed_wheel_elsewhere(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = child_env({"PYTHONPATH": str(site)})  # ahead of the editable checkout on sys.path
    where = subprocess.run(
        [sys.executable, "-c", "import lossforge; print(lossforge.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lossforge",
            *QUICK_RUN,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/accuracy" in result.stdout and (tmp_path / "outputs" / "mlflow.db").is_file()
