"""What a finished run leaves in MLflow besides metrics: its config, its plots, and Hydra's record."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from lossforge.tracking.runs import RunHandle, params_for_mlflow


def log_config(run: RunHandle, cfg: DictConfig) -> None:
    """The flattened resolved config as params (secrets scrubbed), and the config itself as YAML."""
    config = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    params, too_long = params_for_mlflow(config)
    run.log_params(params)
    if too_long:
        run.set_tags({"lossforge.long_params": ",".join(too_long)})
    run.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")


def log_figures(run: RunHandle, figures: dict[str, Any]) -> None:
    """Each matplotlib figure as ``plots/<name>``, closed afterwards."""
    import matplotlib.pyplot as plt

    for name, figure in figures.items():
        run.client.log_figure(run.run_id, figure, f"plots/{name}")
        plt.close(figure)


def metric_history(run: RunHandle) -> dict[str, list[tuple[int, float]]]:
    """Every per-epoch ``train/*`` and ``val/*`` metric of the run, as ``{name: [(epoch, value), …]}``."""
    return {
        key: [(metric.step, metric.value) for metric in run.client.get_metric_history(run.run_id, key)]
        for key in run.client.get_run(run.run_id).data.metrics
        if key.startswith(("train/", "val/")) and key.count("/") == 1
    }


def log_hydra_record(run: RunHandle, output_dir: Path) -> None:
    """Hydra's record of the run (``<run dir>/.hydra/*.yaml``) as text under ``hydra/``, through the secret
    scrubber."""
    hydra_record = output_dir / ".hydra"
    if hydra_record.is_dir():
        for file in sorted(hydra_record.glob("*.yaml")):
            run.log_text(file.read_text(), f"hydra/{file.name}")
