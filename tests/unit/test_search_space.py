"""Search spaces: the priors, the adapter that reads them (:func:`lossforge.contract.search_space`), the Optuna
helper, the space every shipped component declares, and the contract kit's ``check_search_space``."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import optuna
import pytest
import torch
from helpers import EXTRAS, Site, needs_extras, own_loss_names, own_miner_names
from torch import Tensor, nn

from lossforge.commands.list import main as list_components
from lossforge.contract import (
    Categorical,
    ContractError,
    FloatRange,
    IntRange,
    describe_search_space,
    parse_prior,
    parse_search_space,
    search_space,
    suggest,
)
from lossforge.mining.tuples import all_pair_indices
from lossforge.registry import LOSSES, MINERS
from lossforge.testing import loss_checks, miner_checks

# -- toy components, written as a plugin writes them (plain data, no lossforge import) -------------


class Smooth(nn.Module):
    """A regression loss with one parameter of each kind: ``(|r| ** power).sum(...) * weight / scale``."""

    tasks: ClassVar[tuple[str, ...]] = ("regression",)
    search_space: ClassVar[dict[str, dict[str, Any]]] = {
        "scale": {"low": 0.1, "high": 10.0, "log": True},
        "power": {"low": 1.0, "high": 2.0},
        "terms": {"low": 1, "high": 7, "type": "int", "step": 2},
        "weighting": {"choices": ["none", "double"]},
    }

    def __init__(
        self,
        *,
        scale: float = 1.0,
        power: float = 2.0,
        terms: int = 3,
        weighting: str = "none",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"smooth: expected `scale` > 0, got {scale}")
        self.scale, self.power, self.terms, self.weighting, self.reduction = scale, power, terms, weighting, reduction

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.shape != target.shape:
            raise ValueError(f"smooth: expected one shape, got {tuple(prediction.shape)} and {tuple(target.shape)}")
        residual = (prediction - target).abs() + 1e-3  # away from 0, where |r| ** power has no finite gradient
        values = (residual**self.power).reshape(len(residual), -1).sum(dim=1) / self.scale
        values = values * (2.0 if self.weighting == "double" else 1.0)
        return {"none": values, "sum": values.sum(), "mean": values.mean()}[self.reduction]


def with_space(space: Any, base: type[nn.Module] = Smooth) -> type[nn.Module]:
    """``base`` with another ``search_space`` (the class name stays, so messages name it)."""
    return type(base.__name__, (base,), {"search_space": space, "__module__": __name__})


class SwappingPairs(nn.Module):
    """A pair miner whose ``swap=True`` hands negatives out as positives: a broken configuration."""

    tuple_kind: ClassVar[str] = "pair"
    search_space: ClassVar[dict[str, dict[str, Any]]] = {"swap": {"choices": [False, True]}}

    def __init__(self, *, swap: bool = False) -> None:
        super().__init__()
        self.swap = swap

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, ...]:
        anchors, positives, negative_anchors, negatives = all_pair_indices(labels)
        if self.swap:
            return negative_anchors, negatives, anchors, positives
        return anchors, positives, negative_anchors, negatives


def search_space_check(component: type[nn.Module]) -> Any:
    checks = loss_checks(component, dtypes=(torch.float64,)) if hasattr(component, "tasks") else miner_checks(component)
    (check,) = [check for check in checks if check.name == "check_search_space"]
    return check


# -- the priors --------------------------------------------------------------------------------------


def test_the_adapter_reads_the_plain_data_form() -> None:
    assert search_space(Smooth) == {
        "scale": FloatRange(0.1, 10.0, log=True),
        "power": FloatRange(1.0, 2.0),
        "terms": IntRange(1, 7, step=2),
        "weighting": Categorical(("none", "double")),
    }
    assert search_space(Smooth()) == search_space(Smooth)  # an instance reads like its class


def test_the_adapter_reads_the_dataclass_form_and_a_mix() -> None:
    space = {"scale": FloatRange(0.5, 2.0, log=True), "weighting": {"choices": ["none"]}}
    assert search_space(with_space(space)) == {
        "scale": FloatRange(0.5, 2.0, log=True),
        "weighting": Categorical(["none"]),
    }


def test_no_declaration_means_an_empty_space() -> None:
    class Plain(nn.Module):
        tasks = ("regression",)

    assert search_space(Plain) == {} and describe_search_space(Plain) == "nothing of its own"


def test_int_bounds_alone_make_a_float_range() -> None:
    prior = parse_prior({"low": 0, "high": 5})
    assert prior == FloatRange(0.0, 5.0) and isinstance(prior.low, float)


@pytest.mark.parametrize(
    ("space", "parameter", "rule"),
    [
        ({"scale": {"low": 5.0, "high": 0.5}}, "scale", "low must be < high, got low=5.0, high=0.5"),
        ({"scale": {"low": 0.0, "high": 1.0, "log": True}}, "scale", "log=True needs low > 0, got low=0.0"),
        ({"weighting": {"choices": []}}, "weighting", "choices must not be empty"),
        ({"weighting": {"choices": "none"}}, "weighting", "choices must be a list of values"),
        ({"weighting": {"choices": ["none", "none"]}}, "weighting", "choices must not repeat a value"),
        ({"weighting": {"choices": [[1.0, 2.0]]}}, "weighting", "choices must be None, bools, numbers or strings"),
        ({"scale": {"low": 0.1, "hihg": 1.0}}, "scale", "unknown key 'hihg'. Did you mean 'high'?"),
        ({"scale": {"low": 0.1, "high": 1.0, "step": 0.1}}, "scale", '\'step\' needs "type": "int"'),
        ({"scale": {"low": 0.1}}, "scale", "a range needs 'low' and 'high', missing ['high']"),
        ({"scale": {"low": 0.1, "high": 1.0, "type": "double"}}, "scale", "'type' must be 'float' or 'int'"),
        ({"scale": [0.1, 1.0]}, "scale", "expected {'low': ..., 'high': ..."),
        ({"terms": {"low": 1, "high": 8, "type": "int", "step": 2}}, "terms", "high - low must be a multiple of step"),
        (
            {"terms": {"low": 1, "high": 9, "type": "int", "step": 2, "log": True}},
            "terms",
            "log=True needs low > 0 and step 1",
        ),
        ({"terms": {"low": 1.5, "high": 8, "type": "int"}}, "terms", "low and high must be ints"),
        ({"terms": {"low": 1, "high": 8}}, "terms", 'the parameter is an `int`, so the range needs "type": "int"'),
        ({"scael": {"low": 0.1, "high": 1.0}}, "scael", "not a constructor parameter. Did you mean 'scale'?"),
        ({"reduction": {"choices": ["mean", "sum"]}}, "reduction", "the framework sets it"),
    ],
)
def test_the_adapter_refuses_a_bad_space_naming_component_parameter_and_rule(
    space: dict, parameter: str, rule: str
) -> None:
    with pytest.raises(ContractError) as error:
        search_space(with_space(space))
    message = str(error.value)
    assert message.startswith(f"{__name__}.Smooth ")  # the component
    assert repr(parameter) in message and rule in message, message


def test_a_space_that_is_not_a_dict_is_refused() -> None:
    with pytest.raises(ContractError, match=r"Smooth must declare its search space as a dict \{parameter: prior\}"):
        search_space(with_space([("scale", {"low": 0.1, "high": 1.0})]))


def test_the_dataclasses_validate_when_built() -> None:
    with pytest.raises(ValueError, match="low must be < high"):
        FloatRange(1.0, 1.0)
    with pytest.raises(ValueError, match="low and high must be finite numbers"):
        FloatRange(0.0, math.inf)
    with pytest.raises(ValueError, match="choices must not be empty"):
        Categorical(())


def test_a_shared_space_is_parsed_under_its_owners_name() -> None:
    space = parse_search_space({"optimizer.lr": {"low": 1e-4, "high": 3e-2, "log": True}}, owner="the shared space")
    assert space == {"optimizer.lr": FloatRange(1e-4, 3e-2, log=True)}
    with pytest.raises(ContractError, match=r"^the shared space has an invalid prior for 'optimizer.lr'"):
        parse_search_space({"optimizer.lr": {"low": 0.0, "high": 1.0, "log": True}}, owner="the shared space")


def test_probes_cover_the_bounds_the_middle_and_every_choice() -> None:
    assert FloatRange(0.0, 5.0).probes() == (0.0, 2.5, 5.0)
    assert FloatRange(0.01, 1.0, log=True).probes() == pytest.approx((0.01, 0.1, 1.0))
    assert IntRange(1, 7, step=2).probes() == (1, 3, 7)
    assert IntRange(1, 2).probes() == (1, 2)
    assert Categorical((None, 0.2)).probes() == (None, 0.2)
    assert all(IntRange(1, 7, step=2).contains(value) for value in IntRange(1, 7, step=2).probes())


# -- Optuna ------------------------------------------------------------------------------------------


def test_suggest_with_a_fixed_trial() -> None:
    trial = optuna.trial.FixedTrial({"loss.scale": 0.5, "loss.terms": 5, "miner.margin": None})
    assert suggest(trial, "loss.scale", FloatRange(0.1, 10.0, log=True)) == 0.5
    assert suggest(trial, "loss.terms", IntRange(1, 7, step=2)) == 5
    assert suggest(trial, "miner.margin", Categorical((None, 0.2))) is None


def test_suggest_in_a_real_study_stays_in_range_with_the_right_types_and_scale() -> None:
    priors = {
        "loss.scale": FloatRange(0.01, 100.0, log=True),
        "loss.power": FloatRange(0.0, 100.0),
        "loss.terms": IntRange(2, 10, step=2),
        "loss.margin": Categorical((None, 0.2, 1.0)),
        "miner.margin": Categorical((None, 0.5)),  # the same parameter name on the miner stays apart
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn: dict[str, list[Any]] = {name: [] for name in priors}
    for _ in range(200):
        trial = study.ask()
        for name, prior in priors.items():
            drawn[name].append(suggest(trial, name, prior))
        study.tell(trial, 0.0)
    distributions = study.trials[0].distributions  # class names differ between Optuna 2 and 3; these do not
    scale, terms = distributions["loss.scale"], distributions["loss.terms"]
    assert (scale.low, scale.high, terms.low, terms.high, terms.step) == (0.01, 100.0, 2, 10, 2)
    assert distributions["loss.margin"].choices == (None, 0.2, 1.0)
    for name, prior in priors.items():
        assert all(prior.contains(value) for value in drawn[name]), name
    assert all(type(value) is float for value in drawn["loss.scale"] + drawn["loss.power"])
    assert all(type(value) is int for value in drawn["loss.terms"])
    assert set(drawn["loss.margin"]) == {None, 0.2, 1.0}
    # log-uniform on [0.01, 100]: about half the draws below the geometric middle 1; uniform: about 1 %
    assert 0.35 < sum(value < 1.0 for value in drawn["loss.scale"]) / 200 < 0.65
    assert sum(value < 1.0 for value in drawn["loss.power"]) / 200 < 0.05


# -- what lossforge and its example plugin declare --------------------------------------------------------


OWN_COMPONENTS = [(LOSSES, name) for name in own_loss_names()] + [(MINERS, name) for name in own_miner_names()]


@pytest.mark.parametrize(("registry", "name"), OWN_COMPONENTS, ids=[f"{r.kind}-{n}" for r, n in OWN_COMPONENTS])
def test_every_shipped_component_declares_a_valid_space(registry: Any, name: str) -> None:
    space = search_space(registry.load(name))  # raises ContractError if invalid
    assert all(isinstance(prior, FloatRange | IntRange | Categorical) for prior in space.values())


def test_the_builtin_priors() -> None:
    spaces = {
        name: search_space(LOSSES.load(name))
        for name in own_loss_names()
        if LOSSES.info(name).distribution == "lossforge"
    }
    assert spaces["l1"] == spaces["l2"] == {}
    assert spaces["huber"] == {"delta": FloatRange(0.05, 10.0, log=True)}
    assert spaces["focal"] == {"gamma": FloatRange(0.0, 5.0)}
    assert spaces["cross_entropy"] == {"label_smoothing": FloatRange(0.0, 0.3)}
    assert spaces["weighted_cross_entropy"]["weights"] == Categorical(("inverse_frequency", "effective_number"))
    assert spaces["triplet"] == {"margin": FloatRange(0.02, 2.0, log=True)}
    miners = {name: search_space(MINERS.load(name)) for name in ("all_pairs", "hard_pairs", "semihard_triplets")}
    assert miners["all_pairs"] == {}
    # a miner's margin=None ("the loss's margin") stays reachable: None is one of its choices
    assert all(prior["margin"].contains(None) for prior in (miners["hard_pairs"], miners["semihard_triplets"]))


@needs_extras
def test_the_example_plugin_declares_plain_data() -> None:
    names = [name for name in own_loss_names() if LOSSES.info(name).distribution == EXTRAS]
    for name in names:
        declared = LOSSES.load(name).search_space
        assert declared and all(type(prior) is dict for prior in declared.values()), name
    assert search_space(LOSSES.load("info_nce")) == {"temperature": FloatRange(0.01, 1.0, log=True)}


def test_list_shows_each_space(capsys: pytest.CaptureFixture[str]) -> None:
    list_components()
    lines = capsys.readouterr().out.splitlines()
    tune = {lines[index - 2].split()[0]: line.strip() for index, line in enumerate(lines) if "tune:" in line}
    assert tune["focal"] == "tune: gamma in [0, 5]"
    assert tune["huber"] == "tune: delta in [0.05, 10] log"
    assert tune["semihard_triplets"] == "tune: margin in {None, 0.05, 0.1, 0.2, 0.5, 1.0}"


def test_a_plugin_declares_its_space_without_importing_lossforge(site: Site) -> None:
    source = """
    import torch
    from torch import nn


    class Tempered(nn.Module):
        tasks = ("regression",)
        search_space = {"temperature": {"low": 0.01, "high": 1.0, "log": True}}

        def __init__(self, *, temperature: float = 0.1, reduction: str = "mean") -> None:
            super().__init__()
            self.temperature, self.reduction = temperature, reduction

        def forward(self, prediction, target):
            return ((prediction - target) ** 2).mean() / self.temperature
    """
    site.install(
        "lf-test-tempered",
        package="lf_test_tempered",
        files={"losses.py": source},
        entry_points={"lossforge.losses": {"tempered": "lf_test_tempered.losses:Tempered"}},
    )
    assert search_space(LOSSES.load("tempered")) == {"temperature": FloatRange(0.01, 1.0, log=True)}
    assert describe_search_space(LOSSES.load("tempered")) == "temperature in [0.01, 1] log"


# -- the contract kit's check ------------------------------------------------------------------------


def test_the_check_passes_a_good_space() -> None:
    search_space_check(Smooth)()
    search_space_check(with_space({"swap": {"choices": [False]}}, SwappingPairs))()


def test_the_check_catches_a_default_outside_its_prior() -> None:
    check = search_space_check(with_space({"scale": {"low": 2.0, "high": 5.0}}))
    with pytest.raises(AssertionError, match=r"default scale=1.0 lies outside its prior \[2, 5\]"):
        check()


def test_the_check_catches_a_key_that_is_not_a_constructor_parameter() -> None:
    check = search_space_check(with_space({"sclae": {"low": 0.1, "high": 2.0}}))
    with pytest.raises(AssertionError, match="'sclae' in its search space, which is not a constructor parameter"):
        check()


def test_the_check_catches_a_drawn_value_that_breaks_the_loss() -> None:
    check = search_space_check(with_space({"scale": {"low": 0.0, "high": 2.0}}))  # scale=0 is refused by the loss
    with pytest.raises(AssertionError, match=r"drawn from its search space: scale=0.0: building it raised ValueError"):
        check()
    check = search_space_check(with_space({"power": {"low": 1.0, "high": 2000.0}}))  # overflows to inf
    with pytest.raises(AssertionError, match=r"drawn from its search space: power=1000.5: output is not finite"):
        check()


def test_the_check_catches_a_drawn_value_that_breaks_a_miner() -> None:
    with pytest.raises(AssertionError, match=r"drawn from its search space: swap=True.*a positive has another label"):
        search_space_check(SwappingPairs)()
