"""Tests for lossforge.data: the registry contract, splitting, standardisation, every dataset, the IDX
reader and the validators. No test touches the network; MNIST is tested on tiny IDX files written here."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import io
from pathlib import Path

import pytest
import torch
from image_layouts import IMAGE_LAYOUTS
from omegaconf import OmegaConf

from lossforge.contract import DATASET_TASKS, RESERVED_DATASET_KEYS
from lossforge.data import (
    DATASETS,
    DataSplits,
    Split,
    build_dataset,
    dataset_parameters,
    list_datasets,
    split_indices,
    standardize_features,
    validate_data_splits,
    validate_features,
    validate_targets,
)
from lossforge.data import mnist as mnist_module
from lossforge.data.base import Standardizer, partition_indices
from lossforge.data.digits import (
    MULTILABEL_DEFINITIONS,
    digits,
    digits_binary,
    digits_imbalanced,
    digits_multilabel,
    imbalanced_class_sizes,
    multilabel_targets,
)
from lossforge.data.mnist import find_mnist_files, read_idx, write_idx
from lossforge.data.regression import diabetes, regression_outliers

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "dataset"


# -- fixtures ---------------------------------------------------------------------------------------------
def write_tiny_mnist(folder: Path, *, gz: bool, train: int = 40, test: int = 20) -> None:
    """Four IDX files like MNIST's: ``train`` and ``test`` random 28×28 images, labels cycling 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(123)
    suffix = ".gz" if gz else ""
    for prefix, count in (("train", train), ("t10k", test)):
        images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
        labels = (torch.arange(count) % 10).to(torch.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    write_tiny_mnist(tmp_path / "mnist", gz=True)
    return tmp_path / "mnist"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt fails the test (tests that exercise downloads patch in a fake server)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(mnist_module.urllib.request, "urlopen", refuse)


#: lossforge's own datasets (a plugin's are checked by the contract kit, lossforge.testing).
OWN_DATASETS = [name for name in list_datasets() if DATASETS.info(name).distribution == "lossforge"]


def params_for(name: str, tmp_path: Path) -> dict:
    """Parameters that let dataset ``name`` build offline and fast."""
    if name == "csv":
        path = tmp_path / "table.csv"
        rows = "".join(f"{i % 7},{(i * 3) % 5},{'abc'[i % 3]}\n" for i in range(60))
        path.write_text("x,y,label\n" + rows)
        return {"path": str(path), "target": "label"}
    if name == "mnist":
        write_tiny_mnist(tmp_path / "mnist", gz=False)
        return {"root": str(tmp_path / "mnist")}
    if name in IMAGE_LAYOUTS:  # miniature copies of the image datasets' on-disk layouts
        return IMAGE_LAYOUTS[name](tmp_path)
    return {}


def assert_same(first: DataSplits, second: DataSplits) -> None:
    for (split_name, a), b in zip(first.splits().items(), second.splits().values(), strict=True):
        assert torch.equal(a.features, b.features), split_name
        assert torch.equal(a.targets, b.targets), split_name


def make_data(**overrides: object) -> DataSplits:
    """A valid small multiclass DataSplits, with fields replaced by ``overrides`` (to break it)."""
    split = Split(torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]))
    fields = {
        "name": "toy",
        "task": "multiclass",
        "train": split,
        "val": split,
        "test": split,
        "num_outputs": 3,
        "class_names": ("a", "b", "c"),
    }
    fields.update(overrides)
    return DataSplits(**fields)  # type: ignore[arg-type]


# -- the registry and its contract -----------------------------------------------------------------------
def test_list_datasets_is_sorted_and_filters() -> None:
    assert list_datasets() == sorted(list_datasets())
    assert list_datasets("digits_*") == ["digits_binary", "digits_imbalanced", "digits_multilabel"]


def test_unknown_dataset_suggests_the_closest_name() -> None:
    with pytest.raises(ValueError, match=r"Unknown dataset 'digts'\. Did you mean 'digits'.*Available datasets"):
        build_dataset("digts", seed=0)


def test_unknown_parameter_names_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"no parameter 'imbalance'.*'imbalance_ratio'.*Accepted parameters"):
        build_dataset("digits_imbalanced", seed=0, imbalance=10.0)


def test_missing_seed_is_explained() -> None:
    with pytest.raises(ValueError, match=r"needs seed"):
        build_dataset("digits")


@pytest.mark.parametrize("name", OWN_DATASETS)
def test_every_dataset_has_a_matching_config(name: str) -> None:
    path = CONF_DIR / f"{name}.yaml"
    assert path.is_file(), f"conf/dataset/{name}.yaml is missing"
    config = OmegaConf.to_container(OmegaConf.load(path))
    assert config.pop("name") == name
    assert config.pop("split_seed") == 0, "every dataset option records its split seed (decisions.md §1)"
    assert not set(config) & set(RESERVED_DATASET_KEYS)
    defaults = dataset_parameters(name)
    assert defaults.pop("seed") is inspect.Parameter.empty, "seed must be required and not in the YAML"
    assert config.keys() == defaults.keys(), "the YAML must list every parameter, and nothing else"
    for key, default in defaults.items():
        expected = list(default) if isinstance(default, tuple) else default
        assert config[key] == expected, f"{name}.yaml: {key} default differs from the function's"
    text = path.read_text()
    assert all("#" in line for line in text.splitlines()[1:] if line and not line.startswith("name:"))


@pytest.mark.parametrize("name", OWN_DATASETS)
def test_every_dataset_honours_the_contract(name: str, tmp_path: Path) -> None:
    params = params_for(name, tmp_path)
    data = build_dataset(name, seed=0, **params)
    assert data.name == name and data.task in DATASET_TASKS
    validate_data_splits(data)
    for split in data.splits().values():
        assert split.features.dtype in (torch.float32, torch.uint8)  # uint8: images, normalised on the device
        assert tuple(split.features.shape[1:]) == data.input_shape
    assert_same(data, build_dataset(name, seed=0, **params))
    other = build_dataset(name, seed=1, **params)
    assert not torch.equal(data.train.features, other.train.features), "a new seed must give a new split"


# -- splitting and standardisation -----------------------------------------------------------------------
def test_split_indices_partition_all_samples_with_exact_sizes() -> None:
    labels = torch.arange(100) % 3
    train, val, test = split_indices(100, val_fraction=0.15, test_fraction=0.25, seed=4, strata=labels)
    assert (len(train), len(val), len(test)) == (60, 15, 25)
    assert torch.equal(torch.cat([train, val, test]).sort().values, torch.arange(100))


def test_split_indices_are_stratified() -> None:
    labels = torch.tensor([0] * 80 + [1] * 20)  # 80/20 imbalance
    _, val, test = split_indices(100, val_fraction=0.2, test_fraction=0.2, seed=0, strata=labels)
    assert labels[val].bincount().tolist() == [16, 4]
    assert labels[test].bincount().tolist() == [16, 4]


def test_split_indices_depend_on_the_seed_only() -> None:
    first = split_indices(50, val_fraction=0.2, test_fraction=0.2, seed=7)
    assert all(
        torch.equal(a, b)
        for a, b in zip(first, split_indices(50, val_fraction=0.2, test_fraction=0.2, seed=7), strict=True)
    )
    assert not torch.equal(first[2], split_indices(50, val_fraction=0.2, test_fraction=0.2, seed=8)[2])


def test_rounding_ties_do_not_always_favour_the_first_class() -> None:
    labels = torch.arange(20) % 10  # 2 per class; a 10% val split takes 2 samples from 10 tied classes
    picked = {tuple(labels[partition_indices(labels, {"val": 0.1}, seed=seed)["val"]].tolist()) for seed in range(10)}
    assert len(picked) > 1


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction", "message"),
    [(0.0, 0.2, "val_fraction"), (0.2, 1.5, "test_fraction"), (0.6, 0.4, "left to train on")],
)
def test_bad_fractions_are_rejected(val_fraction: float, test_fraction: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_indices(10, val_fraction=val_fraction, test_fraction=test_fraction, seed=0)


def test_a_split_that_would_be_empty_is_explained() -> None:
    with pytest.raises(
        ValueError, match=r"3 samples with test_fraction=0.1, val_fraction=0.1 leaves the test split empty"
    ):
        split_indices(3, val_fraction=0.1, test_fraction=0.1, seed=0)


def test_seed_must_be_an_int() -> None:
    with pytest.raises(ValueError, match=r"`seed` to be an int"):
        split_indices(10, val_fraction=0.2, test_fraction=0.2, seed=1.5)  # type: ignore[arg-type]


def test_standardisation_uses_train_statistics_only() -> None:
    train = Split(torch.tensor([[0.0, 3.0], [2.0, 3.0], [4.0, 3.0]]), torch.tensor([0, 1, 0]))
    test = Split(torch.tensor([[100.0, 7.0]]), torch.tensor([1]))
    new_train, new_val, new_test = standardize_features(train, test, test)
    assert torch.allclose(new_train.features.mean(0), torch.zeros(2), atol=1e-6)
    std = torch.tensor(8 / 3).sqrt()
    assert torch.allclose(new_test.features, torch.tensor([[(100.0 - 2.0) / std, 4.0]]))
    assert torch.equal(new_val.features, new_test.features)


def test_a_constant_feature_becomes_zero_not_nan() -> None:
    values = torch.full((5, 2), 3.3)
    scaled = Standardizer.fit(values)(values)
    assert torch.equal(scaled, torch.zeros(5, 2))


def test_dataset_features_are_standardised_with_train_statistics() -> None:
    data = digits(seed=0)
    varying = data.train.features.std(0) > 0
    assert torch.allclose(data.train.features.mean(0), torch.zeros(64), atol=1e-4)
    assert torch.allclose(
        data.train.features.std(0, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-4
    )
    assert not torch.allclose(data.test.features.mean(0), torch.zeros(64), atol=1e-4)


# -- the digits family -----------------------------------------------------------------------------------
def test_digits_shapes_and_stratification() -> None:
    data = digits(seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (1257, 270, 270)
    assert data.train.targets.dtype == torch.int64 and data.num_outputs == 10 and data.input_dim == 64
    for split in (data.val, data.test):
        counts = split.targets.bincount(minlength=10)
        assert int(counts.max() - counts.min()) <= 2


def test_held_out_classes_appear_only_in_test() -> None:
    data = digits(seed=0, held_out_classes=[7, 8, 9])
    assert set(data.test.targets.tolist()) == {7, 8, 9}
    assert set(data.train.targets.tolist()) == set(range(7)) == set(data.val.targets.tolist())
    assert len(data.test) == 179 + 174 + 180  # every image of 7, 8 and 9
    assert data.num_outputs == 10


@pytest.mark.parametrize("held_out", [[10], [1, 1], list(range(9)), "789"])
def test_bad_held_out_classes_are_rejected(held_out: object) -> None:
    with pytest.raises(ValueError, match="held_out_classes"):
        digits(seed=0, held_out_classes=held_out)  # type: ignore[arg-type]


def test_imbalance_profile() -> None:
    assert imbalanced_class_sizes(100, 100.0, num_classes=3) == [100, 10, 1]
    assert imbalanced_class_sizes(50, 1000.0, num_classes=3)[-1] == 1  # never below one sample
    with pytest.raises(ValueError, match="imbalance_ratio"):
        imbalanced_class_sizes(10, 0.5)


def test_imbalance_is_realised_in_train_and_val_test_stay_balanced() -> None:
    data = digits_imbalanced(seed=0, imbalance_ratio=10.0)
    counts = data.train.targets.bincount(minlength=10)
    assert counts.tolist() == sorted(counts.tolist(), reverse=True)  # digit 0 most frequent, 9 rarest
    assert counts[0] / counts[9] == pytest.approx(10.0, rel=0.05)
    for split in (data.val, data.test):
        balanced = split.targets.bincount(minlength=10)
        assert int(balanced.max() - balanced.min()) <= 2
    assert int(digits_imbalanced(seed=0).train.targets.bincount(minlength=10)[9]) == 1  # ratio 100 → 122:1


def test_binary_labels_follow_the_positive_digits() -> None:
    base, binary = digits(seed=3), digits_binary(seed=3, positive_digits=[2, 9])
    assert binary.task == "binary" and binary.num_outputs == 1 and binary.train.targets.dtype == torch.int64
    for digit_split, binary_split in zip(base.splits().values(), binary.splits().values(), strict=True):
        expected = ((digit_split.targets == 2) | (digit_split.targets == 9)).long()
        assert torch.equal(binary_split.targets, expected)
        assert torch.equal(binary_split.features, digit_split.features)
    assert binary.class_names == ("digits 0,1,3,4,5,6,7,8", "digits 2,9")


@pytest.mark.parametrize("positive", [[], list(range(10)), [3, 3]])
def test_binary_needs_both_classes(positive: list[int]) -> None:
    with pytest.raises(ValueError, match="positive_digits"):
        digits_binary(seed=0, positive_digits=positive)


def test_multilabel_definitions_on_known_digits() -> None:
    rows = multilabel_targets(torch.arange(10))  # (10, 4): even, at_least_5, prime, closed_loop
    assert tuple(MULTILABEL_DEFINITIONS) == ("even", "at_least_5", "prime", "closed_loop")
    assert rows[0].tolist() == [1, 0, 0, 1]
    assert rows[1].tolist() == [0, 0, 0, 0]
    assert rows[4].tolist() == [1, 0, 0, 1]
    assert rows[7].tolist() == [0, 1, 1, 0]
    assert rows[8].tolist() == [1, 1, 0, 1]
    assert rows[:, 2].nonzero().flatten().tolist() == [2, 3, 5, 7]
    assert rows[:, 3].nonzero().flatten().tolist() == [0, 4, 6, 8, 9]


def test_multilabel_dataset_matches_the_digit_split() -> None:
    base, data = digits(seed=0), digits_multilabel(seed=0)
    assert data.task == "multilabel" and data.num_outputs == 4 and data.class_names == tuple(MULTILABEL_DEFINITIONS)
    assert data.train.targets.dtype == torch.float32 and data.train.targets.shape == (1257, 4)
    assert torch.equal(data.test.targets, multilabel_targets(base.test.targets))


# -- regression ------------------------------------------------------------------------------------------
def test_outliers_are_only_in_train() -> None:
    clean = regression_outliers(seed=0, outlier_fraction=0.0)
    dirty = regression_outliers(seed=0, outlier_fraction=0.2, outlier_scale=10.0)
    assert torch.equal(clean.val.targets, dirty.val.targets) and torch.equal(clean.test.targets, dirty.test.targets)
    assert torch.equal(clean.train.features, dirty.train.features)
    shift = dirty.train.targets - clean.train.targets
    moved = shift != 0
    assert int(moved.sum()) == round(0.2 * len(clean.train)) == 140
    assert bool((shift[moved] >= 5.0).all())  # one-sided, at least 0.5 · scale · sqrt(1 + noise²)
    assert dirty.task == "regression" and dirty.train.targets.shape == (700,) and dirty.num_outputs == 1


def test_symmetric_outliers_go_both_ways() -> None:
    clean = regression_outliers(seed=0, outlier_fraction=0.0)
    dirty = regression_outliers(seed=0, symmetric_outliers=True)
    shift = dirty.train.targets - clean.train.targets
    assert bool((shift > 4).any()) and bool((shift < -4).any())


def test_regression_targets_stay_in_generated_units() -> None:
    clean = regression_outliers(seed=0, outlier_fraction=0.0, num_samples=4000, noise=0.1)
    assert clean.train.targets.std().item() == pytest.approx((1 + 0.1**2) ** 0.5, rel=0.1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"outlier_fraction": 1.0}, "outlier_fraction"),
        ({"outlier_scale": -1.0}, "outlier_scale"),
        ({"noise": -0.1}, "noise"),
        ({"num_features": 0}, "num_features"),
    ],
)
def test_bad_regression_parameters_are_rejected(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        regression_outliers(seed=0, **params)


def test_diabetes_targets_are_standardised_with_train_statistics() -> None:
    data = diabetes(seed=0)
    assert data.train.targets.dtype == torch.float32 and data.train.targets.shape == (310,)
    assert data.train.targets.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert data.train.targets.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    assert data.input_dim == 10 and data.class_names == ()


# -- MNIST and the IDX reader ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, dtype: torch.dtype, suffix: str) -> None:
    values = (torch.arange(24) - 3).reshape(2, 3, 4).to(dtype)
    write_idx(tmp_path / f"values{suffix}", values)
    loaded = read_idx(tmp_path / f"values{suffix}")
    assert loaded.dtype == dtype and torch.equal(loaded, values)


def test_idx_header_is_big_endian(tmp_path: Path) -> None:
    write_idx(tmp_path / "labels", torch.tensor([7, 1], dtype=torch.int16))
    assert (tmp_path / "labels").read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 7, 0, 1])


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_tiny_idx_files(tmp_path: Path, gz: bool) -> None:
    write_tiny_mnist(tmp_path, gz=gz, train=40, test=20)
    data = mnist_module.mnist(seed=0, root=str(tmp_path), val_fraction=0.25)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 20)
    assert data.input_dim == 784 and data.num_outputs == 10 and data.task == "multiclass"
    assert data.val.targets.bincount(minlength=10).tolist() == [1] * 10  # stratified
    assert data.train.features.mean().item() == pytest.approx(0.0, abs=1e-5)  # one global mean/std
    expected_test = read_idx(next(tmp_path.glob("t10k-labels*"))).long()
    assert torch.equal(data.test.targets, expected_test)  # test is exactly the t10k set, in order


def test_mnist_accepts_the_dotted_file_names(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path, gz=False)
    for path in tmp_path.iterdir():
        path.rename(tmp_path / path.name.replace("-idx", ".idx"))
    assert all(path is not None for path in find_mnist_files(tmp_path).values())


def test_missing_mnist_files_say_where_and_how(tmp_path: Path) -> None:
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(ValueError) as caught:
        mnist_module.mnist(seed=0, root=str(tmp_path))
    message = str(caught.value)
    assert str(tmp_path) in message and "t10k-labels-idx1-ubyte" in message
    assert "train-images-idx3-ubyte," not in message  # that one is present
    assert "download=True" in message and "dataset.root=" in message


def test_download_fetches_verifies_and_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "server"
    write_tiny_mnist(source, gz=True)
    served = {path.name: path.read_bytes() for path in source.iterdir()}
    checksums = {stem: hashlib.md5(served[f"{stem}.gz"]).hexdigest() for stem in mnist_module.MNIST_FILES}
    monkeypatch.setattr(mnist_module, "MNIST_FILES", checksums)
    requested = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        requested.append(url)
        return io.BytesIO(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(mnist_module.urllib.request, "urlopen", fake_urlopen)
    data = mnist_module.mnist(seed=0, root=str(tmp_path / "data"), download=True)
    assert len(requested) == 4 and len(data.test) == 20
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == sorted(served)


def test_download_rejects_a_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist_module.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"<html>"))
    with pytest.raises(RuntimeError, match=r"MD5 .*expected"):
        mnist_module.download_mnist(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written is left behind


def _idx_bytes(values: torch.Tensor) -> bytes:
    """A uint8 IDX file's bytes, assembled by hand (independently of ``write_idx``)."""
    header = bytes([0, 0, 0x08, values.dim()]) + b"".join(d.to_bytes(4, "big") for d in values.shape)
    return header + values.numpy().tobytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"<html><body>Forbidden</body>", "bad magic number"),
        (bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 0]), "unknown dtype code 0x0A"),
        (bytes([0, 0, 0x08, 0]), "0 dimensions"),
        (bytes([0, 0, 0x08, 3, 0, 0, 0, 2]), "truncated: its 3 dimension sizes"),
        (_idx_bytes(torch.zeros(4, 3, 3, dtype=torch.uint8))[:-5], r"is truncated: .*\(4, 3, 3\)"),
        (_idx_bytes(torch.zeros(2, dtype=torch.uint8)) + b"xx", "2 unexpected trailing bytes"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_idx_files_are_named_and_explained(tmp_path: Path, content: bytes, message: str, gz: bool) -> None:
    path = tmp_path / ("broken.gz" if gz else "broken")
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=message) as caught:
        read_idx(path)
    assert str(path) in str(caught.value)


def test_a_truncated_gzip_stream_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(torch.zeros(50, 28, 28, dtype=torch.uint8)))[:-30])
    with pytest.raises(ValueError, match=r"cannot be decompressed.*truncated or corrupt"):
        read_idx(path)


def test_a_missing_idx_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope-idx1-ubyte' does not exist"):
        read_idx(tmp_path / "nope-idx1-ubyte")


def test_mismatched_mnist_files_are_explained(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path, gz=False, train=40)
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.zeros(39, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"40 images but .* 39 labels"):
        mnist_module.mnist(seed=0, root=str(tmp_path))
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.full((40,), 11, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"label 11; MNIST labels are 0-9"):
        mnist_module.mnist(seed=0, root=str(tmp_path))


# -- validators ------------------------------------------------------------------------------------------
def test_nan_and_inf_are_counted_and_located() -> None:
    features = torch.zeros(4, 3)
    features[0, 0], features[1, 2], features[3, 1] = float("nan"), float("inf"), float("-inf")
    with pytest.raises(ValueError, match=r"dataset 'mine', val split: features contain 1 NaN and 2 infinite"):
        validate_features(features, dataset="mine", split="val")
    with pytest.raises(ValueError, match=r"test split: targets contain 1 NaN and 0 infinite value\(s\) out of 2"):
        validate_targets(torch.tensor([0.0, float("nan")]), task="regression", num_outputs=1, split="test")


def test_datasplits_refuse_bad_data_when_built() -> None:
    bad = Split(torch.tensor([[float("nan")] * 3] * 3), torch.tensor([0, 1, 2]))
    with pytest.raises(
        ValueError,
        match=r"dataset 'toy', test split: features contain 9 NaN and 0 infinite value\(s\) out of 9",
    ):
        make_data(test=bad)


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (Split(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64)), r"train split: the split is empty"),
        (
            Split(torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 1])),
            r"must be float32.*features\.float\(\)",
        ),
        (Split(torch.zeros(2, 3), torch.tensor([0.0, 1.0])), r"must be torch\.int64.*targets\.long\(\)"),
        (Split(torch.zeros(2, 3), torch.tensor([0, 3])), r"indices in \[0, 3\), got 1 value\(s\) outside"),
        (Split(torch.zeros(2, 3), torch.tensor([-1, 0])), r"outside it \(smallest -1"),
        (Split(torch.zeros(3, 3), torch.tensor([0, 1])), r"3 feature rows but 2 targets"),
        (Split(torch.zeros(2), torch.tensor([0, 1])), r"shape \(N, \*sample_shape\).*\(N, 1\)"),
        (Split(torch.zeros(2, 3, dtype=torch.int32), torch.tensor([0, 1])), r"float32 \(or uint8 images\)"),
        (Split(torch.zeros(2, 3), torch.eye(3)[:2].long()), r"shape \(N,\)"),
    ],
)
def test_validators_reject_broken_splits(split: Split, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_data(train=split)


@pytest.mark.parametrize(
    ("targets", "task", "num_outputs", "message"),
    [
        (torch.tensor([0, 2]), "binary", 1, r"class indices in \[0, 2\)"),
        (torch.tensor([[0.0, 0.5]]), "multilabel", 2, r"must be 0 or 1, got 1 other"),
        (torch.tensor([[0.0, 1.0]]), "multilabel", 3, r"shape \(N, 3\)"),
        (torch.tensor([[1, 0]]), "multilabel", 2, r"float32"),
        (torch.zeros(4, 2), "regression", 1, r"shape \(N,\) or \(N, 1\)"),
        (torch.zeros(4), "regression", 3, r"shape \(N, 3\)"),
        (torch.zeros(2), "ranking", 1, r"unknown task 'ranking'"),
    ],
)
def test_validate_targets_per_task(targets: torch.Tensor, task: str, num_outputs: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_targets(targets, task=task, num_outputs=num_outputs)


@pytest.mark.parametrize(
    ("targets", "task", "num_outputs"),
    [
        (torch.tensor([0, 1, 1]), "binary", 1),
        (torch.tensor([2, 0, 1]), "multiclass", 3),  # the largest index, num_outputs - 1, is in range
        (torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]), "multilabel", 2),
        (torch.tensor([-1.5, 0.0, 2e6]), "regression", 1),  # any finite value
        (torch.zeros(3, 1), "regression", 1),
        (torch.zeros(3, 2), "regression", 2),
    ],
)
def test_valid_targets_pass(targets: torch.Tensor, task: str, num_outputs: int) -> None:
    original = targets.clone()
    assert validate_targets(targets, task=task, num_outputs=num_outputs) is None
    assert torch.equal(targets, original)  # validating reads, never converts
    split = Split(torch.zeros(len(targets), 3), targets)
    data = make_data(task=task, train=split, val=split, test=split, num_outputs=num_outputs, class_names=())
    assert data.task == task and data.train.targets is targets  # a dataset of them builds and keeps them as given


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "binary", "num_outputs": 2, "class_names": ()}, r"binary task has num_outputs=1"),
        ({"class_names": ("a", "b")}, r"needs 3 class names \(or none\), got 2"),
        ({"num_outputs": 0}, r"num_outputs must be a positive int"),
        ({"test": Split(torch.zeros(2, 5), torch.tensor([0, 1]))}, r"same per-sample shape"),
        ({"val": "not a split"}, r"`val` must be a Split"),
    ],
)
def test_datasplits_check_their_own_fields(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_data(**overrides)
