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


def test_the_wheel_has_every_package_of_the_checkout(wheel: Path) -> None:
    """Packages are found, not listed: a sub-package added to the checkout ships (``lossforge.protocol``
    once did not, and a built wheel had no ``lossforge benchmark``)."""
    shipped = {str(Path(name).parent) for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    packages = {
        str(init.parent.relative_to(ROOT))
        for top in ("lossforge", "hydra_plugins")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert {"lossforge/protocol", "lossforge/sweeps", "lossforge/commands"} <= packages
    assert packages - shipped == set()


def fresh_venv(root: Path, wheel: Path) -> Path:
    """A new virtual environment with lossforge installed from ``wheel`` — not editable, not the checkout —
    and its dependencies borrowed from this one: a folder of links to this environment's packages, less
    lossforge's own (the editable install and the example plugins), on its path. Returns its ``bin``."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (site,) = (venv / "lib").glob("python*/site-packages")
    borrowed = root / "borrowed"
    borrowed.mkdir()
    ours = ("lossforge", "__editable__", "_lossforge")
    for entry in Path(pytest.__file__).resolve().parents[1].iterdir():  # this environment's site-packages
        if not entry.name.startswith(ours) and not entry.name.endswith(".pth"):
            (borrowed / entry.name).symlink_to(entry)
    (site / "borrowed.pth").write_text(f"{borrowed}\n")
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps"]
    subprocess.run([*install, "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv / "bin"


def test_list_a_run_and_a_benchmark_from_the_wheel_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    """What a SLURM node that installs the wheel gets: ``lossforge list``, a 1-epoch run and ``lossforge
    benchmark --budget tiny`` (two losses, one tuning trial each) from the installed script, elsewhere."""
    bin_dir = fresh_venv(tmp_path, wheel)
    work = tmp_path / "work"
    work.mkdir()
    env = child_env()
    env.pop("PYTHONPATH", None)

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(arguments, cwd=work, env=env, capture_output=True, text=True, timeout=600)

    where = run(str(bin_dir / "python"), "-c", "import lossforge.protocol, lossforge.sweeps; print(lossforge.__file__)")
    assert where.returncode == 0, where.stderr[-3000:]
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout  # the wheel's copy, not the checkout
    listed = run(str(bin_dir / "lossforge"), "list")
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    assert "cross_entropy" in listed.stdout and "extras" not in listed.stdout  # lossforge's own, only
    trained = run(str(bin_dir / "lossforge"), *QUICK_RUN)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "test/accuracy" in trained.stdout and (work / "outputs" / "mlflow.db").is_file()
    losses = ("--losses", "cross_entropy,focal", "--trials", "1", "--epochs", "1")
    compared = run(str(bin_dir / "lossforge"), "benchmark", "model.hidden=[8]", "--budget", "tiny", *losses)
    assert compared.returncode == 0, compared.stdout[-3000:] + compared.stderr[-3000:]
    assert "### test/accuracy" in compared.stdout and "MLflow run:" in compared.stdout
