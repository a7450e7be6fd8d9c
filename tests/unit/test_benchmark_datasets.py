"""The standard benchmarks on miniature copies of their official on-disk layouts (``tests/image_layouts.py``);
downloads only from a local HTTP server on 127.0.0.1 that these tests start."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import inspect
import io
import os
import pickle
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from image_layouts import (
    IMAGE_LAYOUTS,
    write_cars_devkit,
    write_cars_original,
    write_cifar10,
    write_cifar100,
    write_cub,
    write_fashion,
    write_sop,
)

from lossforge.data import benchmarks
from lossforge.data.benchmarks import cifar, fashion, metric
from lossforge.data.benchmarks.downloads import Archive, extract_archive, fetch_archive
from lossforge.data.images import ImageFiles


def every_class(data: dict[str, Any], split: str) -> set[int]:
    part = data[split]
    targets = part.targets.numpy() if isinstance(part, ImageFiles) else part[1]
    return set(targets.tolist())


# -- CIFAR -----------------------------------------------------------------------------------------------
def test_cifar10_reads_the_python_batches_into_uint8_images_with_the_official_test_set(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    data = benchmarks.cifar10(seed=0, root=str(tmp_path), val_fraction=0.2)
    train_images, train_labels = data["train"]
    assert train_images.dtype == np.uint8 and train_images.shape[1:] == (3, 32, 32)
    assert len(train_labels) == 40 and len(data["val"][1]) == 10  # 50 training images, 20 % for val
    assert np.array_equal(train_images[:, 0, 5, 5], train_labels * 20)  # the red plane is the first 1,024 bytes
    assert (train_images[:, 2, 31, 31] == 255).all()
    _, test_labels = data["test"]
    assert test_labels.tolist() == list(range(10))  # exactly test_batch, in its order
    assert data["class_names"] == cifar.CIFAR10_CLASSES
    assert vars(benchmarks.cifar10)["task"] == "multiclass" and len(vars(benchmarks.cifar10)["mean"]) == 3
    # the root may also be the batches folder itself
    again = benchmarks.cifar10(seed=0, root=str(tmp_path / "cifar-10-batches-py"), val_fraction=0.2)
    assert np.array_equal(again["val"][0], data["val"][0])


def test_cifar100_reads_fine_or_coarse_labels(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    fine = benchmarks.cifar100(seed=0, root=str(tmp_path), val_fraction=0.5)
    coarse = benchmarks.cifar100(seed=0, root=str(tmp_path), val_fraction=0.5, labels="coarse")
    assert len(fine["class_names"]) == 100 and fine["class_names"][7] == "fine7"
    assert coarse["num_classes"] == 20 and set(coarse["test"][1].tolist()) == set(range(20))
    assert len(fine["train"][1]) == 100 and fine["test"][0].shape == (100, 3, 32, 32)
    with pytest.raises(ValueError, match="'fine'"):
        benchmarks.cifar100(seed=0, root=str(tmp_path), labels="medium")


def test_a_cifar_batch_that_would_run_code_is_refused_before_it_runs(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    witness = tmp_path / "owned"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {witness}",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": Payload(), "labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"Refusing to unpickle global '(posix|os)\.system'"):
        benchmarks.cifar10(seed=0, root=str(tmp_path))
    assert not witness.exists()
    # any other global is refused too, even a harmless-looking one
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": functools.partial(print)}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"functools\.partial"):
        benchmarks.cifar10(seed=0, root=str(tmp_path))


def test_a_missing_benchmark_says_where_it_looked_and_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"CIFAR-10 not found under .*dataset\.download=true"):
        benchmarks.cifar10(seed=0, root=str(tmp_path))


# -- Fashion-MNIST ---------------------------------------------------------------------------------------
def test_fashion_mnist_reads_idx_files_into_one_channel_images(tmp_path: Path) -> None:
    write_fashion(tmp_path / "fashion")
    data = benchmarks.fashion_mnist(seed=0, root=str(tmp_path / "fashion"), val_fraction=0.25)
    images, labels = data["train"]
    assert images.dtype == np.uint8 and images.shape == (30, 1, 28, 28) and labels.dtype == np.int64
    assert np.array_equal(images[:, 0, 0, 0], labels)
    assert data["test"][1].tolist() == [i % 10 for i in range(20)]
    assert data["class_names"][9] == "Ankle boot"


# -- a local HTTP server for the download tests -----------------------------------------------------------
class Recorder(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Recorder.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving the folder it yields; its URL and folder."""
    served = tmp_path / "served"
    served.mkdir()
    Recorder.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Recorder, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    finally:
        httpd.shutdown()
        httpd.server_close()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_download_fetches_verifies_and_extracts_the_archive_once(
    tmp_path: Path, server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, served = server
    write_cifar10(tmp_path / "build")
    with tarfile.open(served / "cifar-10-python.tar.gz", "w:gz") as bundle:
        bundle.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    archive = Archive(
        url=url + "cifar-10-python.tar.gz",
        filename="cifar-10-python.tar.gz",
        md5=md5(served / "cifar-10-python.tar.gz"),
    )
    monkeypatch.setitem(cifar.ARCHIVES, "cifar10", archive)
    root = tmp_path / "data"
    data = benchmarks.cifar10(seed=0, root=str(root), download=True)
    assert len(data["test"][1]) == 10 and (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert not list(root.glob("*.part"))
    benchmarks.cifar10(seed=0, root=str(root), download=True)  # present: nothing fetched again
    assert Recorder.requests == ["/cifar-10-python.tar.gz"]


def test_a_download_with_the_wrong_checksum_is_deleted_and_explained(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, served = server
    (served / "archive.tgz").write_bytes(b"<html>a captive portal</html>")
    archive = Archive(url=url + "archive.tgz", filename="archive.tgz", sha256="0" * 64)
    with pytest.raises(RuntimeError, match=r"does not match its published checksum.*SHA256"):
        fetch_archive(archive, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []  # neither the file nor a .part left behind
    missing = Archive(url=url + "absent.tgz", filename="absent.tgz", md5="0" * 32)
    with pytest.raises(RuntimeError, match="404"):
        fetch_archive(missing, tmp_path / "data")


def test_fashion_mnist_download_fetches_the_four_files(
    tmp_path: Path, server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, served = server
    contents = write_fashion(served)
    sums = {stem: hashlib.md5(content, usedforsecurity=False).hexdigest() for stem, content in contents.items()}
    monkeypatch.setattr(fashion, "FASHION_MNIST_FILES", sums)
    monkeypatch.setattr(fashion, "FASHION_MNIST_MIRRORS", (url,))
    data = benchmarks.fashion_mnist(seed=0, root=str(tmp_path / "fm"), download=True)
    assert len(data["test"][1]) == 20 and sorted(Recorder.requests) == sorted(f"/{stem}.gz" for stem in sums)


def evil_tar(path: Path, member: tarfile.TarInfo, content: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        bundle.addfile(member, io.BytesIO(content) if member.isfile() else None)
    return path


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink_out"])
def test_a_tar_member_that_would_land_outside_root_is_refused(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "root"
    if kind == "symlink_out":
        member = tarfile.TarInfo("link")
        member.type, member.linkname = tarfile.SYMTYPE, str(tmp_path / "outside")
    else:
        member = tarfile.TarInfo("../escaped.txt" if kind == "dotdot" else str(tmp_path / "escaped.txt"))
        member.size = 1
    archive = evil_tar(tmp_path / "evil.tgz", member)
    with pytest.raises(ValueError, match="Refusing to extract"):
        extract_archive(archive, root)
    assert not (tmp_path / "escaped.txt").exists() and not (root / "link").exists()


def test_a_zip_member_that_would_land_outside_root_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("Stanford_Online_Products/ok.txt", "fine")
        bundle.writestr("../../escaped.txt", "owned")
    with pytest.raises(ValueError, match=r"Refusing to extract.*\.\./\.\./escaped\.txt"):
        extract_archive(archive, tmp_path / "root" / "deeper")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "root" / "escaped.txt").exists()
    assert not (tmp_path / "root" / "deeper" / "Stanford_Online_Products").exists()  # nothing extracted


def test_a_safe_zip_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("folder/a.txt", "a")
    extract_archive(archive, tmp_path / "root")
    assert (tmp_path / "root" / "folder" / "a.txt").read_text() == "a"


# -- metric-learning benchmarks: class-disjoint by construction -------------------------------------------
def check_class_disjoint(data: dict[str, Any], train_classes: set[int], test_classes: set[int]) -> None:
    assert every_class(data, "train") | every_class(data, "val") == train_classes
    assert every_class(data, "test") == test_classes
    assert data["classes_disjoint"] is True
    assert len(data["provenance"]["file_list_sha256"]) == 64


def test_cub_trains_on_the_first_half_of_the_classes_and_tests_on_the_second(tmp_path: Path) -> None:
    write_cub(tmp_path)
    data = benchmarks.cub200(seed=0, root=str(tmp_path), image_size=8, val_fraction=0.2)
    check_class_disjoint(data, {0, 1}, {2, 3})
    assert len(data["train"][1]) == 8 and len(data["val"][1]) == 2 and len(data["test"][1]) == 10
    assert data["train"][0].shape[1:] == (3, 8, 8) and data["train"][0].dtype == np.uint8
    assert data["class_names"][0] == "001.Bird_1" and data["num_classes"] == 4
    assert vars(benchmarks.cub200)["class_disjoint"] is True and vars(benchmarks.cub200)["task"] == "multiclass"
    # the green channel encodes the class: the labels follow the files
    images, targets = data["test"]
    assert np.array_equal(images[:, 1, 4, 4] > 100, targets == 2)


def test_cub_names_every_missing_image_it_lists(tmp_path: Path) -> None:
    folder = write_cub(tmp_path)
    for path in list((folder / "images").rglob("*_0001.jpg"))[:3]:
        path.unlink()
    with pytest.raises(ValueError, match=r"(?s)3 of 20 image files .* are missing.*Bird_\d_0001\.jpg"):
        benchmarks.cub200(seed=0, root=str(tmp_path), image_size=8)


def test_cars196_reads_the_original_layout(tmp_path: Path) -> None:
    write_cars_original(tmp_path / "cars196")
    data = benchmarks.cars196(seed=0, root=str(tmp_path), image_size=8, val_fraction=0.25)
    check_class_disjoint(data, {0, 1}, {2, 3})
    assert data["class_names"] == ("Car 1", "Car 2", "Car 3", "Car 4")
    assert len(data["test"][1]) == 8  # classes 3-4 whatever their `test` flag


def test_cars196_reads_the_devkit_layout_with_the_same_convention(tmp_path: Path) -> None:
    write_cars_devkit(tmp_path / "cars")
    data = benchmarks.cars196(seed=0, root=str(tmp_path / "cars"), image_size=8, val_fraction=0.25)
    check_class_disjoint(data, {0, 1}, {2, 3})
    assert len(data["test"][1]) == 8 and data["class_names"][3] == "Car 4"


def test_sop_uses_its_own_split_files_and_streams_above_the_budget(tmp_path: Path) -> None:
    write_sop(tmp_path)
    data = benchmarks.stanford_online_products(
        seed=0, root=str(tmp_path), image_size=8, val_fraction=0.25, memory_budget_mb=0, num_workers=1
    )
    assert isinstance(data["train"], ImageFiles) and data["train"].num_workers == 1
    check_class_disjoint(data, {0, 1, 2}, {3, 4})
    image, target = data["test"][0]
    assert image.shape == (3, 8, 8) and int(target) == 3
    assert benchmarks.BENCHMARKS["sop"] is benchmarks.stanford_online_products
    assert metric.ARCHIVES["sop"][0].md5 == "7f73d41a2f44250d4779881525aea32e"


def test_every_benchmark_declares_the_contract_attributes() -> None:
    for name, function in benchmarks.BENCHMARKS.items():
        assert vars(function)["task"] == "multiclass", name
        seed = inspect.signature(function).parameters["seed"]  # the split seed, required, keyword-only
        assert seed.kind is inspect.Parameter.KEYWORD_ONLY and seed.default is inspect.Parameter.empty, name
    class_disjoint = {
        name for name, function in benchmarks.BENCHMARKS.items() if getattr(function, "class_disjoint", False)
    }
    assert class_disjoint == {"cub200", "cars196", "sop"}


def test_gzip_is_recognised_by_content_for_fashion_mnist(tmp_path: Path) -> None:
    contents = write_fashion(tmp_path / "fm")
    for stem, content in contents.items():  # plain, uncompressed files are read too
        (tmp_path / "fm" / f"{stem}.gz").unlink()
        (tmp_path / "fm" / stem).write_bytes(gzip.decompress(content))
    assert len(benchmarks.fashion_mnist(seed=0, root=str(tmp_path / "fm"))["test"][1]) == 20


@pytest.mark.parametrize("name", sorted(IMAGE_LAYOUTS))
def test_every_image_dataset_passes_the_plugin_contract_kit(name: str, tmp_path: Path) -> None:
    from lossforge.testing import check_dataset

    check_dataset(name, params=IMAGE_LAYOUTS[name](tmp_path))  # what `lossforge check` holds a plugin's dataset to
