"""Tests for lossforge.models: the built-in models, the reserved keys (embedding rule, frozen BatchNorm,
pretrained weights) and the model contract, on tiny inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lossforge.models import CNN, MLP, Network, ResNet, build_model, count_parameters, list_models, load_weights


def test_the_lecture_mlp_has_669706_parameters() -> None:
    model = build_model("mlp", input_shape=(784,), output_dim=10, hidden=[512, 512], activation="tanh")
    assert count_parameters(model) == 669_706
    linear = [layer for layer in model.layers if isinstance(layer, torch.nn.Linear)]
    tanh = [layer for layer in model.layers if isinstance(layer, torch.nn.Tanh)]
    assert [(m.in_features, m.out_features) for m in linear] == [(784, 512), (512, 512), (512, 10)]
    assert len(tanh) == 2


def test_the_mlp_flattens_any_sample_shape() -> None:
    assert MLP(input_shape=(64,), output_dim=3, hidden=(16,))(torch.randn(5, 64)).shape == (5, 3)
    assert MLP(input_shape=(1, 8, 8), output_dim=3, hidden=(16,))(torch.randn(5, 1, 8, 8)).shape == (5, 3)


@pytest.mark.parametrize("name", ["mlp", "embedding_mlp", "cnn", "resnet"])
def test_every_model_becomes_a_normalised_embedding_model_under_a_metric_loss(name: str) -> None:
    options = {
        "mlp": {"hidden": [8]},
        "embedding_mlp": {"hidden": [8]},
        "cnn": {"channels": [4]},
        "resnet": {"width": 4},
    }
    model = build_model(name, input_shape=(3, 8, 8), output_dim=10, embedding=True, embedding_dim=6, **options[name])
    out = model.eval()(torch.randn(4, 3, 8, 8))
    assert out.shape == (4, 6) and torch.allclose(out.norm(dim=1), torch.ones(4))
    raw = build_model(name, input_shape=(3, 8, 8), output_dim=10, embedding=True, normalize=False, **options[name])
    assert raw.eval()(torch.randn(4, 3, 8, 8)).shape == (4, 64)  # the default embedding width
    assert not torch.allclose(raw(torch.randn(4, 3, 8, 8)).norm(dim=1), torch.ones(4))


def test_reserved_keys_never_reach_the_model_class() -> None:
    seen: dict[str, object] = {}

    class Strict(nn.Module):  # no **kwargs: a reserved key passed on would be a TypeError
        def __init__(self, *, input_shape: tuple[int, ...], output_dim: int, depth: int = 1) -> None:
            super().__init__()
            seen.update(input_shape=input_shape, output_dim=output_dim, depth=depth)
            self.fc = nn.Linear(input_shape[0], output_dim)

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return self.fc(features)

    from lossforge.registry import MODELS

    MODELS.register("strict_test_model", Strict)
    try:
        build_model(
            "strict_test_model",
            input_shape=(5,),
            output_dim=3,
            depth=2,
            weights=None,
            freeze_batchnorm=False,
            embedding_dim=7,
            normalize=True,
        )
        assert seen == {"input_shape": (5,), "output_dim": 3, "depth": 2}
        build_model("strict_test_model", input_shape=(5,), output_dim=3, embedding=True, embedding_dim=7)
        assert seen["output_dim"] == 7
    finally:
        MODELS.refresh()


def test_cnn_and_resnet_shapes_and_stems() -> None:
    assert CNN(input_shape=(1, 28, 28), output_dim=10, channels=(4, 8))(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    small = ResNet(input_shape=(3, 32, 32), output_dim=5, width=4)
    assert small.stem_kind == "cifar" and small(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    large = ResNet(input_shape=(3, 96, 96), output_dim=5, width=4, depth=34)
    assert large.stem_kind == "imagenet" and len(large.stages) == 3 + 4 + 6 + 3
    assert large(torch.zeros(1, 3, 96, 96)).shape == (1, 5)
    with pytest.raises(ValueError, match=r"expected `depth` in \[18, 34\]"):
        ResNet(input_shape=(3, 32, 32), output_dim=5, depth=50)
    with pytest.raises(ValueError, match=r"\(C, H, W\).*model=mlp"):
        CNN(input_shape=(64,), output_dim=3)


def test_frozen_batchnorm_keeps_its_statistics_through_training_mode() -> None:
    model = build_model("cnn", input_shape=(3, 8, 8), output_dim=4, channels=[4], freeze_batchnorm=True)
    assert isinstance(model, Network)
    batchnorm = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    before = batchnorm.running_mean.clone()
    model.train()
    model(torch.randn(8, 3, 8, 8) * 5 + 3)
    assert not batchnorm.training and torch.equal(batchnorm.running_mean, before)
    assert not any(p.requires_grad for p in batchnorm.parameters())
    assert count_parameters(model) < count_parameters(
        build_model("cnn", input_shape=(3, 8, 8), output_dim=4, channels=[4])
    )


def test_weights_load_the_trunk_and_reinitialise_a_head_of_another_size(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pretrained = ResNet(input_shape=(3, 16, 16), output_dim=10, width=4)
    path = tmp_path / "trunk.pt"
    torch.save(pretrained.state_dict(), path)
    model = build_model("resnet", input_shape=(3, 16, 16), output_dim=3, width=4, weights=str(path))
    assert torch.equal(model.stem[0].weight, pretrained.stem[0].weight)
    assert model.fc.weight.shape == (3, 32)
    same_classes = build_model("resnet", input_shape=(3, 16, 16), output_dim=10, width=4, weights=str(path))
    assert torch.equal(same_classes.fc.weight, pretrained.fc.weight)


def test_weights_from_a_safetensors_file_load_like_a_torch_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    pretrained = ResNet(input_shape=(3, 16, 16), output_dim=10, width=4)
    path = tmp_path / "trunk.safetensors"
    save_file({name: tensor.contiguous() for name, tensor in pretrained.state_dict().items()}, str(path))
    model = build_model("resnet", input_shape=(3, 16, 16), output_dim=3, width=4, weights=str(path))
    assert torch.equal(model.stem[0].weight, pretrained.stem[0].weight)
    assert model.fc.weight.shape == (3, 32)  # the head of another size stays freshly initialised
    wide = tmp_path / "wide.safetensors"
    save_file(ResNet(input_shape=(3, 16, 16), output_dim=10, width=8).state_dict(), str(wide))
    with pytest.raises(ValueError, match=r"layers whose shapes differ.*stem\.0\.weight"):
        build_model("resnet", input_shape=(3, 16, 16), output_dim=10, width=4, weights=str(wide))


def test_weights_that_do_not_fit_name_the_layers(tmp_path: Path) -> None:
    path = tmp_path / "wide.pt"
    torch.save(ResNet(input_shape=(3, 16, 16), output_dim=10, width=8).state_dict(), path)
    with pytest.raises(
        ValueError, match=r"layers whose shapes differ.*stem\.0\.weight \(8, 3, 3, 3\) vs \(4, 3, 3, 3\)"
    ):
        build_model("resnet", input_shape=(3, 16, 16), output_dim=10, width=4, weights=str(path))
    torch.save({"stem.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"layers the file lacks: .*stages"):
        load_weights(ResNet(input_shape=(3, 16, 16), output_dim=2, width=4), path)
    torch.save({"stem.0.weight": "not a tensor"}, path)
    with pytest.raises(Exception, match=r"Weights only load failed|expected a state dict"):
        load_weights(ResNet(input_shape=(3, 16, 16), output_dim=2, width=4), path)


def test_errors_teach() -> None:
    assert {"mlp", "cnn", "resnet"} <= set(list_models())
    with pytest.raises(ValueError, match="Did you mean 'mlp'"):
        build_model("mpl", input_shape=(4,), output_dim=2)
    with pytest.raises(ValueError, match="activation"):
        MLP(input_shape=(4,), output_dim=2, activation="sigmoidish")
    with pytest.raises(ValueError, match="dropout"):
        MLP(input_shape=(4,), output_dim=2, dropout=1.5)
    with pytest.raises(ValueError, match=r"has no parameter 'hiden'.*Did you mean 'hidden'"):
        build_model("mlp", input_shape=(4,), output_dim=2, hiden=[3])
