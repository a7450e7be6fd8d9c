"""Bad input → one clear paragraph, before any MLflow run exists (so none is left RUNNING).

The table below is the contract: each row is an input and a fragment its message must contain. Config
rows go through the real path (override check → Hydra composition → ``train``); data and loss rows call
the validators and losses the pipeline calls. ``tests/e2e/test_bad_input_runs.py`` runs a few rows through the
real command in a subprocess, to check the exit status and that no traceback wall is printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import compose_config
from hydra.errors import ConfigCompositionException
from mlflow import MlflowClient

from lossforge import build_loss
from lossforge.data.base import validate_features, validate_targets
from lossforge.overrides import check_overrides
from lossforge.training.run import train


def run_overrides(*overrides: str) -> Callable[[Path], None]:
    """What `python -m lossforge <overrides>` does up to the first error, in-process."""

    def attempt(tmp_path: Path) -> None:
        problem = check_overrides(list(overrides))
        if problem:
            raise ValueError(problem)
        train(compose_config(*overrides, "trainer.max_epochs=1", "model.hidden=[8]"), base_dir=tmp_path)

    return attempt


def call(function: Callable[[], object]) -> Callable[[Path], None]:
    return lambda tmp_path: function()


def write_corrupt_mnist(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (root / name).write_bytes(b"\x00\x00\x08\x03not really idx")


def prepared_weighted_ce(targets: torch.Tensor, num_classes: int, **params: object) -> None:
    build_loss("weighted_cross_entropy", **params).prepare(targets=targets, num_classes=num_classes)


# (case id, input, fragment the message must contain)
TABLE: list[tuple[str, Callable[[Path], None], str]] = [
    # unknown names, with close-match suggestions
    ("unknown loss", run_overrides("loss=focall"), "Did you mean 'focal'"),
    ("unknown miner", run_overrides("loss=triplet", "miner=semihard"), "Did you mean 'semihard_triplets'"),
    ("unknown model", run_overrides("model=mpl"), "Did you mean 'mlp'"),
    ("unknown dataset", run_overrides("dataset=digit"), "Did you mean 'digits'"),
    ("unknown optimizer", run_overrides("optimizer=adm"), "Did you mean 'adam'"),
    ("unknown in a sweep list", run_overrides("loss=l1,l3", "dataset=diabetes"), "unknown loss 'l3'"),
    # invalid hyperparameters
    ("negative margin", run_overrides("loss=triplet", "loss.margin=-1"), "`margin` >= 0, got -1"),
    ("delta <= 0", run_overrides("loss=huber", "dataset=diabetes", "loss.delta=0"), "`delta` > 0, got 0"),
    ("gamma < 0", run_overrides("loss=focal", "loss.gamma=-1"), "`gamma` >= 0, got -1"),
    ("alpha outside [0, 1]", run_overrides("loss=focal", "dataset=digits_binary", "loss.alpha=1.5"), "[0, 1], got 1.5"),
    ("class weights of the wrong length", run_overrides("loss=weighted_cross_entropy", "loss.weights=[1,2]"), "10"),
    (
        "negative class weights",
        run_overrides("loss=weighted_cross_entropy", "loss.weights=[1,1,1,1,1,1,1,1,1,-1]"),
        ">= 0",
    ),
    ("unknown parameter", run_overrides("loss=focal", "loss.gammma=1"), "gammma"),
    ("a string where a float belongs", run_overrides("loss=focal", "loss.gamma=abc"), "gamma"),
    ("negative learning rate", run_overrides("optimizer.lr=-1"), "`lr` > 0"),
    # loss/task mismatch, miner without a metric loss
    ("loss/task mismatch", run_overrides("loss=focal", "dataset=regression_outliers"), "Losses that fit"),
    ("miner without a metric loss", run_overrides("miner=all_pairs"), "mines pairs/triplets for metric losses"),
    (
        "a classifier tested on unseen classes",
        run_overrides("dataset.held_out_classes=[7,8,9]"),
        "never seen in training ([7, 8, 9])",
    ),
    ("miner of the wrong tuple kind", run_overrides("loss=triplet", "miner=all_pairs"), "takes triplets"),
    # data problems
    (
        "labels out of range",
        call(lambda: validate_targets(torch.tensor([0, 12]), task="multiclass", num_outputs=10)),
        "12",
    ),
    (
        "float labels for classes",
        call(lambda: validate_targets(torch.tensor([0.0, 1.0]), task="multiclass", num_outputs=2)),
        "int64",
    ),
    ("NaN features", call(lambda: validate_features(torch.tensor([[0.0, float("nan")]]))), "NaN"),
    ("Inf features", call(lambda: validate_features(torch.tensor([[float("inf"), 0.0]]))), "1 infinite"),
    ("empty split", call(lambda: validate_features(torch.zeros(0, 3))), "empty"),
    (
        "class absent from training with inverse_frequency",
        call(lambda: prepared_weighted_ce(torch.tensor([0, 0, 1]), 3, weights="inverse_frequency")),
        "no samples",
    ),
    (
        "wrong label shape at the loss",
        call(lambda: build_loss("cross_entropy")(torch.zeros(4, 3), torch.zeros(4, 2, dtype=torch.long))),
        "cross_entropy: expected",
    ),
    ("missing MNIST", run_overrides("dataset=mnist", "dataset.root=/nonexistent/mnist"), "train-images-idx3-ubyte"),
    # the tracking store
    ("unreachable tracking URI", run_overrides("logger.tracking_uri=http://127.0.0.1:9"), "http://127.0.0.1:9"),
]


@pytest.mark.parametrize(("case", "attempt", "fragment"), TABLE, ids=[row[0] for row in TABLE])
def test_bad_input_gets_a_clear_message_and_leaves_no_running_run(
    case: str, attempt: Callable[[Path], None], fragment: str, tmp_path: Path, default_store: str
) -> None:
    with pytest.raises((ValueError, LookupError, TypeError, ConnectionError, ConfigCompositionException)) as error:
        attempt(tmp_path)
    message = str(error.value)
    assert fragment in message, f"{case}: {message}"
    assert len(message) < 1200, f"{case}: a message should be a paragraph, got {len(message)} characters"
    client = MlflowClient(default_store)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    assert all(run.info.status != "RUNNING" for run in client.search_runs(experiments))


def test_corrupt_mnist_names_the_file(tmp_path: Path) -> None:
    write_corrupt_mnist(tmp_path / "mnist")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        run_overrides("dataset=mnist", f"dataset.root={tmp_path / 'mnist'}")(tmp_path)
