"""The comparison protocol's parts: entries, budgets, the open-set split (its studies: test_tuning.py)."""

from __future__ import annotations

import pytest

from lossforge.protocol.plan import BUDGETS, Budget, Entry


def test_entries_parse_a_loss_or_a_loss_with_its_miner() -> None:
    assert Entry.parse("focal") == Entry("focal") and Entry.parse("focal").overrides() == ["loss=focal"]
    entry = Entry.parse(" triplet+semihard_triplets ")
    assert entry.label == "triplet+semihard_triplets"
    assert entry.overrides() == ["loss=triplet", "miner=semihard_triplets"]
    with pytest.raises(ValueError, match="Expected a loss name or 'loss\\+miner', got 'focal loss'"):
        Entry.parse("focal loss")


def test_budgets_are_checked_and_the_default_has_the_recommended_seeds() -> None:
    from lossforge.evaluation.statistics import RECOMMENDED_SEEDS

    assert BUDGETS["default"].seeds == RECOMMENDED_SEEDS
    assert BUDGETS["tiny"].trials * BUDGETS["tiny"].seeds <= 4  # a test-sized budget
    with pytest.raises(ValueError, match=">= 1 trial and >= 1 seed, got 0 and 3"):
        Budget(trials=0, seeds=3)
    with pytest.raises(ValueError, match="`max_epochs` >= 1 or None"):
        Budget(trials=1, seeds=1, max_epochs=0)


def test_metric_learning_is_tuned_and_tested_on_unseen_classes() -> None:
    from helpers import compose_config

    from lossforge.protocol.runner import _open_set

    digits = compose_config("dataset=digits")
    overrides, folds = _open_set(digits, 10, embedding=True, class_folds=0)
    assert overrides == ["dataset.held_out_classes=[7, 8, 9]"] and folds == [[5, 6]]
    overrides, folds = _open_set(digits, 10, embedding=True, class_folds=3)
    assert folds == [[0, 3, 6], [1, 4], [2, 5]]  # a partition of the seven training classes
    chosen = compose_config("dataset=digits", "dataset.held_out_classes=[0,1]")
    assert _open_set(chosen, 10, embedding=True, class_folds=0) == (["dataset.held_out_classes=[0, 1]"], [[8, 9]])
    assert _open_set(digits, 10, embedding=False, class_folds=0) == ([], [])  # classifiers: the usual split
    with pytest.raises(ValueError, match="--class-folds is for metric learning"):
        _open_set(digits, 10, embedding=False, class_folds=2)
    with pytest.raises(ValueError, match="--class-folds 3 needs 2 classes per fold"):
        _open_set(chosen, 4, embedding=True, class_folds=3)
