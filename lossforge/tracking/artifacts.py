"""What a run leaves in MLflow besides its training metrics: its config, its datasets, the machine's use while it
ran, its plots, Hydra's record, and the trained model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from lossforge.data.base import DataSplits
from lossforge.data.samples import Split, split_fingerprint
from lossforge.tracking.runs import RunHandle, params_for_mlflow
from lossforge.tracking.secrets import redact_config, redact_yaml_text


def log_config(run: RunHandle, cfg: DictConfig) -> None:
    """The flattened resolved config as params, and the config itself as YAML — secrets redacted at the node
    that produced them ([lossforge.tracking.secrets.redact_config][]), then scrubbed."""
    config = cast(dict[str, Any], redact_config(cfg))
    params, too_long = params_for_mlflow(config)
    run.log_params(params)
    if too_long:
        run.set_tags({"lossforge.long_params": ",".join(too_long)})
    run.log_text(OmegaConf.to_yaml(config), "config.yaml")


def log_figures(run: RunHandle, figures: dict[str, Any]) -> None:
    """Each matplotlib figure as `plots/<name>`, closed afterwards."""
    import matplotlib.pyplot as plt

    for name, figure in figures.items():
        run.client.log_figure(run.run_id, figure, f"plots/{name}")
        plt.close(figure)


def metric_history(run: RunHandle) -> dict[str, list[tuple[int, float]]]:
    """Every per-epoch `train/*` and `val/*` metric of the run, as `{name: [(epoch, value), …]}`."""
    return {
        key: [(metric.step, metric.value) for metric in run.client.get_metric_history(run.run_id, key)]
        for key in run.client.get_run(run.run_id).data.metrics
        if key.startswith(("train/", "val/")) and key.count("/") == 1
    }


def log_hydra_record(run: RunHandle, output_dir: Path) -> None:
    """Hydra's record of the run (`<run dir>/.hydra/*.yaml`) as text under `hydra/`, through the secret
    scrubber."""
    hydra_record = output_dir / ".hydra"
    if hydra_record.is_dir():
        for file in sorted(hydra_record.glob("*.yaml")):
            run.log_text(redact_yaml_text(file.read_text()), f"hydra/{file.name}")


# -- what a reviewer checks first: the data, the machine, the model ------------------------------------------
SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}
"""MLflow's input tag for the role a dataset played in a run; the UI shows it next to the dataset."""


def split_digest(split: Split) -> str:
    """A stable fingerprint of a split: SHA-256 over its features' and targets' dtypes, shapes and bytes, as its
    first 10 hex digits (MLflow recommends digests of at most 10 characters). MLflow's own numpy digest hashes
    only the first 10,000 values, so two splits that differ further on would look alike.

    ```pycon
    >>> import torch
    >>> split = Split(torch.zeros(3, 2), torch.tensor([0, 1, 0]))
    >>> split_digest(split) == split_digest(Split(torch.zeros(3, 2), torch.tensor([0, 1, 0])))
    True
    >>> split_digest(split) == split_digest(Split(torch.zeros(3, 2), torch.tensor([0, 1, 1])))
    False

    ```
    """
    digest = hashlib.sha256()
    for tensor in (split.features, split.targets):
        array = numpy.ascontiguousarray(tensor.detach().cpu().numpy())
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()[:10]


def log_datasets(run: RunHandle, data: DataSplits, *, source: Mapping[str, Any]) -> None:
    """Each split of `data` as an MLflow dataset input of the run: the dataset's name, `source` (the dataset
    config and seed that built it), the split's [split_digest][lossforge.tracking.artifacts.split_digest] and its role
    (`mlflow.data.context`: training, validation, testing). The UI's dataset column then tells whether two runs saw the
    same data."""
    # The modules that define `mlflow.data.from_numpy` and `mlflow.data.sources.CodeDatasetSource`, which
    # MLflow attaches at import time, out of a type checker's sight.
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    dataset_source = CodeDatasetSource(tags={key: json.dumps(value) for key, value in source.items()})
    inputs = []
    for split_name, split in data.splits().items():
        # a streamed split (samples on disk) is described by its targets, never decoded to be logged
        features = split.features if isinstance(split, Split) else split.targets[:, None]  # (N, …)
        dataset = from_numpy(
            features.detach().cpu().numpy(),
            targets=split.targets.detach().cpu().numpy(),
            name=data.name,
            source=dataset_source,
            digest=split_digest(split) if isinstance(split, Split) else split_fingerprint(split)[:10],
        )
        tag = InputTag(MLFLOW_DATASET_CONTEXT, SPLIT_CONTEXTS[split_name])
        inputs.append(DatasetInput(Dataset(**dataset.to_dict()), tags=[tag]))
    log_inputs_once_more_on_a_race(run, inputs)


def log_inputs_once_more_on_a_race(run: RunHandle, inputs: list[Any]) -> None:
    """`log_inputs`, tried again once when another run inserted the same dataset at the same moment.

    MLflow's SQL store looks a dataset up by (experiment, name, digest) and inserts it when missing; two jobs
    of a parallel sweep that start together both miss it, and the second insert fails on the table's unique
    constraint ("UNIQUE constraint failed" from SQLite, "duplicate key value violates unique constraint"
    from PostgreSQL behind a server). The second attempt finds the first one's row and links to it.
    """
    from mlflow.exceptions import MlflowException

    try:
        run.client.log_inputs(run.run_id, datasets=inputs)
    except MlflowException as error:
        if "unique constraint" not in str(error).lower():
            raise
        run.client.log_inputs(run.run_id, datasets=inputs)


@contextmanager
def system_metrics(run: RunHandle, *, resumed: bool = False) -> Iterator[None]:
    """CPU, memory, disk and network use (and GPU use where `pynvml` is installed) as `system/*` metrics of
    `run` while the block runs, sampled by MLflow's own monitor every 10 s
    (`MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` changes that). A `resumed` run continues its steps.
    Needs `psutil`."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run.run_id, resume_logging=resumed, tracking_uri=run.tracking_uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()  # the last samples are flushed before the run ends


def log_model(run: RunHandle, model: nn.Module, example_features: Tensor) -> None:
    """`model` as the run's `model` (`mlflow.pytorch`; load it with `runs:/<run id>/model`), with the
    signature of its outputs on `example_features` (a batch, `(B, D)`) and that batch as its input example.
    MLflow saves the model as a `torch.export` program (no pickled code), traced on the example: a batch of
    `B >= 2` keeps the batch size free.

    MLflow logs models only through its fluent API, into the active run on the global tracking URI: both are set
    for the call and restored afterwards, so no active run is left behind. Entering the run and leaving it marks
    it FINISHED: call this last, when nothing else can fail the run.
    """
    import mlflow
    import mlflow.pytorch
    from mlflow.models import infer_signature

    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    with torch.no_grad():
        outputs = model(example_features.to(device))  # (B, outputs)
    example = example_features.cpu().numpy()
    signature = infer_signature(example, outputs.cpu().numpy())
    # MLFLOW_TRACKING_URI is set along with the global URI; None (nothing was set) unsets both again.
    previous_uri = mlflow.get_tracking_uri() if mlflow.tracking.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(run.tracking_uri)
    try:
        with mlflow.start_run(run_id=run.run_id, log_system_metrics=False):
            mlflow.pytorch.log_model(model, name="model", signature=signature, input_example=example)
    finally:
        mlflow.set_tracking_uri(previous_uri)  # type: ignore[arg-type]
