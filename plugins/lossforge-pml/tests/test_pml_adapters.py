"""The adapters: values against PML and explicit loops, learnable losses, distances, errors that teach."""

from __future__ import annotations

import inspect
import itertools

import pytest
import torch
from lossforge import build_loss, build_miner
from pytorch_metric_learning import distances, losses

from lossforge_pml.adapters import PMLLoss

EMBEDDINGS = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8], [-1.0, 0.1]], dtype=torch.float64)
LABELS = torch.tensor([0, 0, 1, 1, 2])


def test_the_triplet_margin_loss_against_an_explicit_loop() -> None:
    margin = 0.3
    values = build_loss("pml_triplet_margin_loss", margin=margin, reduction="none")(EMBEDDINGS, LABELS)
    normalized = torch.nn.functional.normalize(EMBEDDINGS)
    expected = [
        max(0.0, float((normalized[a] - normalized[p]).norm() - (normalized[a] - normalized[n]).norm()) + margin)
        for a, p, n in itertools.permutations(range(5), 3)
        if LABELS[a] == LABELS[p] and LABELS[a] != LABELS[n]
    ]
    assert sorted(values.tolist()) == pytest.approx(sorted(expected))
    mean = build_loss("pml_triplet_margin_loss", margin=margin)(EMBEDDINGS, LABELS)
    assert mean.item() == pytest.approx(sum(expected) / len(expected))  # over all triplets, not PML's non-zero ones


def test_reduction_pml_is_what_pml_returns() -> None:
    for name, cls in (
        ("pml_triplet_margin_loss", losses.TripletMarginLoss),
        ("pml_contrastive_loss", losses.ContrastiveLoss),
    ):
        ours = build_loss(name, reduction="pml")(EMBEDDINGS, LABELS)
        assert ours.item() == pytest.approx(cls()(EMBEDDINGS, LABELS).item())


def test_none_holds_every_term_of_a_loss_with_several() -> None:
    values = build_loss("pml_contrastive_loss", reduction="none", neg_margin=2.0)(EMBEDDINGS, LABELS)
    assert values.shape == (4 + 16,)  # 4 ordered positive pairs, then 16 ordered negative pairs


def test_a_learnable_loss_is_built_in_prepare_with_the_datas_sizes() -> None:
    loss = build_loss("pml_arcface_loss", scale=16.0)
    assert loss.pml is None and not list(loss.parameters())  # nothing drawn before prepare
    torch.manual_seed(0)
    loss.prepare(targets=LABELS, num_classes=3, embedding_dim=2)
    assert [tuple(p.shape) for p in loss.parameters()] == [(2, 3)]
    torch.manual_seed(0)
    reference = losses.ArcFaceLoss(num_classes=3, embedding_size=2, scale=16.0)
    assert loss.pml_distance == "default" and loss.distance == "cosine"
    ours = build_loss("pml_arcface_loss", scale=16.0, reduction="pml")
    torch.manual_seed(0)
    ours.prepare(targets=LABELS, num_classes=3, embedding_dim=2)
    assert ours(EMBEDDINGS.float(), LABELS).item() == pytest.approx(reference(EMBEDDINGS.float(), LABELS).item())


def test_a_learnable_loss_refuses_labels_and_widths_it_was_not_prepared_for() -> None:
    loss = build_loss("pml_proxy_anchor_loss")
    loss.prepare(targets=LABELS, num_classes=3, embedding_dim=2)
    with pytest.raises(ValueError, match=r"pml_proxy_anchor_loss: labels must be class indices in \[0, 3\).*\[0, 5\]"):
        loss(EMBEDDINGS, torch.tensor([0, 0, 1, 1, 5]))
    with pytest.raises(ValueError, match=r"prepared for embeddings of width 2, got \(5, 3\)"):
        loss(torch.randn(5, 3), LABELS)


def test_a_checkpoint_of_other_sizes_fails_naming_the_loss_and_both_shapes() -> None:
    trained = build_loss("pml_cosface_loss")
    trained.prepare(targets=LABELS, num_classes=3, embedding_dim=2)
    other = build_loss("pml_cosface_loss")
    other.prepare(targets=LABELS, num_classes=4, embedding_dim=2)
    with pytest.raises(
        ValueError, match=r"pml_cosface_loss: the checkpoint's pml.W has shape \(2, 3\), this loss's \(2, 4\)"
    ):
        other.load_state_dict(trained.state_dict())
    with pytest.raises(ValueError, match="not prepared"):
        build_loss("pml_cosface_loss").load_state_dict(trained.state_dict())


def test_distance_is_a_string_choice() -> None:
    loss = build_loss("pml_contrastive_loss", distance="cosine")
    assert isinstance(loss.pml.distance, distances.CosineSimilarity) and loss.distance == "cosine"
    assert build_loss("pml_contrastive_loss", distance="dot").distance is None  # no lossforge equivalent
    assert isinstance(build_miner("pml_triplet_margin_miner", distance="lp").pml.distance, distances.LpDistance)
    with pytest.raises(ValueError, match=r"pml_arcface_loss: PML's ArcFaceLoss refused .*'distance': 'lp'"):
        build_loss("pml_arcface_loss", distance="lp")
    with pytest.raises(ValueError, match=r"expected `distance` in \['default', 'lp', 'cosine', 'dot'\], got 'l2'"):
        build_loss("pml_contrastive_loss", distance="l2")


def test_bad_inputs_name_the_loss_and_what_it_expected() -> None:
    loss = build_loss("pml_ntxent_loss")
    with pytest.raises(ValueError, match=r"pml_ntxent_loss: expected embeddings \(N, D\) floating and integer labels"):
        loss(EMBEDDINGS, LABELS[:-1])
    with pytest.raises(ValueError, match=r"pml_instance_loss .*indices_tuple is not supported"):
        build_loss("pml_instance_loss")(EMBEDDINGS, LABELS, build_miner("pml_triplet_margin_miner")(EMBEDDINGS, LABELS))
    with pytest.raises(ValueError, match=r"expected `reduction` in \['mean', 'sum', 'none', 'pml'\]"):
        build_loss("pml_ntxent_loss", reduction="avg")


def test_parameters_are_typed_keyword_only_options_mirroring_pml() -> None:
    def annotations(name: str) -> dict[str, object]:
        cls = type(build_loss(name)) if name.endswith("_loss") else type(build_miner(name))
        parameters = inspect.signature(cls).parameters.values()
        assert all(p.kind is p.KEYWORD_ONLY for p in parameters)
        return {p.name: (p.annotation, p.default) for p in parameters}

    arcface = annotations("pml_arcface_loss")
    assert arcface["margin"] == (float, 28.6) and arcface["scale"] == (float, 64.0)
    assert "num_classes" not in arcface and "embedding_size" not in arcface  # from the data, in prepare()
    assert annotations("pml_large_margin_softmax_loss")["margin"] == (int, 4)  # cos(m θ) needs an integer m
    assert annotations("pml_fast_ap_loss")["num_bins"] == (int, 10)
    assert annotations("pml_histogram_loss")["n_bins"] == (int | None, None)
    assert annotations("pml_margin_loss")["num_classes"] == (int | None, None)  # per-class beta, if set
    assert annotations("pml_ranked_list_loss")["Tn"] == (float, 1.0)  # PML has no default: ours
    assert annotations("pml_proxy_nca_loss")["softmax_scale"] == (float, 1.0)  # inherited through **kwargs
    assert annotations("pml_cosface_loss")["margin"] == (float, 0.35)  # PML's CosFace forwards *args
    assert annotations("pml_batch_hard_miner").keys() == {"allowed_pos_range", "allowed_neg_range", "distance"}


def test_a_generated_class_is_one_class_per_name_and_pickles() -> None:
    import pickle

    loss = build_loss("pml_supcon_loss", temperature=0.2)
    assert type(loss) is type(build_loss("pml_supcon_loss")) and isinstance(loss, PMLLoss)
    copy = pickle.loads(pickle.dumps(loss))
    assert copy.options == {"temperature": 0.2} and copy(EMBEDDINGS, LABELS).item() == pytest.approx(
        loss(EMBEDDINGS, LABELS).item()
    )
