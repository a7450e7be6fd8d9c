"""Tests for dataset=csv (lossforge.data.tables): real CSV and Parquet files written here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from lossforge.data.tables import MAX_CLASSES, csv, infer_task


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def iris_like(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = [
        f"{rng.normal() + k:.3f},{rng.normal() * 3:.3f},{['setosa', 'versicolor', 'virginica'][k]}"
        for k in [0, 1, 2] * 20
    ]
    return write_csv(tmp_path / "iris.csv", "length,width,species", rows)


def test_text_labels_train_as_classes_stratified_with_train_only_standardisation(iris_like: Path) -> None:
    data = csv(seed=0, path=str(iris_like), target="species")
    assert data.task == "multiclass" and data.class_names == ("setosa", "versicolor", "virginica")
    assert [split.targets.bincount().tolist() for split in data.splits().values()] == [
        [14, 14, 14],
        [3, 3, 3],
        [3, 3, 3],
    ]
    assert torch.allclose(data.train.features.mean(0), torch.zeros(2), atol=1e-5)
    assert not torch.allclose(data.test.features.mean(0), torch.zeros(2), atol=1e-3)  # fitted on train only
    assert data.provenance == {
        "path": str(iris_like),
        "sha256": hashlib.sha256(iris_like.read_bytes()).hexdigest(),
        "task_rule": "multiclass",
    }
    other = csv(seed=1, path=str(iris_like), target="species")
    assert not torch.equal(data.test.targets, other.test.targets) or not torch.equal(
        data.test.features, other.test.features
    )


@pytest.mark.parametrize(
    ("columns", "task"),
    [
        ({"y": np.array(["a", "b", "c"])}, "multiclass"),
        ({"y": np.array(["yes", "no", "yes"])}, "binary"),
        ({"y": np.array([0, 1, 1])}, "binary"),
        ({"y": np.array([0, 3, 7])}, "multiclass"),
        ({"y": np.arange(MAX_CLASSES + 1)}, "regression"),
        ({"y": np.array([0.5, 1.25])}, "regression"),
        ({"a": np.array([0, 1]), "b": np.array([1, 1])}, "multilabel"),
        ({"a": np.array([0.5, 1]), "b": np.array([1, 2])}, "regression"),
    ],
)
def test_the_task_rule(columns: dict, task: str) -> None:
    assert infer_task(columns)[0] == task


def test_parquet_multi_output_regression_and_a_split_column(tmp_path: Path) -> None:
    size = 30
    table = pa.table(
        {
            "x": np.linspace(0, 1, size),
            "y1": np.linspace(0, 2, size) + 0.5,
            "y2": np.linspace(1, 3, size) + 0.25,
            "part": ["train"] * 20 + ["val"] * 5 + ["test"] * 5,
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    data = csv(seed=0, path=str(tmp_path / "t.parquet"), target=["y1", "y2"], split_column="part")
    assert data.task == "regression" and data.num_outputs == 2 and data.train.targets.shape == (20, 2)
    assert (len(data.train), len(data.val), len(data.test)) == (20, 5, 5) and data.input_shape == (1,)


@pytest.mark.parametrize(
    ("header", "row", "options", "message"),
    [
        ("x,colour,y", "1.0,red,0", {}, r"feature column 'colour' is not numeric.*one-hot.*dataset\.features"),
        ("x,z,y", "1.0,,0", {}, r"column 'z' has 1 missing value"),
        ("x,z,y", "1.0,2.0,0", {"target": "yy"}, r"unknown target column 'yy'\. Did you mean 'y'"),
        ("x,z,y", "1.0,2.0,0", {"features": ["x", "zz"]}, r"unknown feature column 'zz'"),
        ("x,z,y", "1.0,2.0,0", {"task": "multiclas"}, r"Did you mean 'multiclass'"),
    ],
)
def test_one_error_names_the_column(tmp_path: Path, header: str, row: str, options: dict, message: str) -> None:
    good = "1.0,2.0,1" if "colour" not in header else "2.0,blue,1"
    path = write_csv(tmp_path / "bad.csv", header, [row] + [good] * 20 + [row.replace(",,", ",3.0,")] * 20)
    with pytest.raises(ValueError, match=message):
        csv(seed=0, path=str(path), **{"target": "y", **options})


def test_missing_path_or_target_says_how_to_set_them() -> None:
    with pytest.raises(ValueError, match=r"dataset=csv needs dataset\.path.*dataset\.target"):
        csv(seed=0)
