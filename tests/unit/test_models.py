from __future__ import annotations

import pytest
import torch

from lossforge.models import MLP, EmbeddingMLP, build_model, count_parameters


def test_the_lecture_mlp_has_669706_parameters() -> None:
    model = build_model("mlp", input_dim=784, output_dim=10, hidden=[512, 512], activation="tanh")
    assert count_parameters(model) == 669_706
    linear = [layer for layer in model.layers if isinstance(layer, torch.nn.Linear)]
    tanh = [layer for layer in model.layers if isinstance(layer, torch.nn.Tanh)]
    assert [(m.in_features, m.out_features) for m in linear] == [(784, 512), (512, 512), (512, 10)]
    assert len(tanh) == 2


def test_shapes() -> None:
    assert MLP(input_dim=64, output_dim=3, hidden=(16,))(torch.randn(5, 64)).shape == (5, 3)
    embedding = EmbeddingMLP(input_dim=64, embedding_dim=8, hidden=(16,), normalize=True)
    out = embedding(torch.randn(5, 64))
    assert out.shape == (5, 8) and torch.allclose(out.norm(dim=1), torch.ones(5))


def test_errors_teach() -> None:
    with pytest.raises(ValueError, match="Did you mean 'mlp'"):
        build_model("mpl", input_dim=4, output_dim=2)
    with pytest.raises(ValueError, match="activation"):
        MLP(input_dim=4, output_dim=2, activation="sigmoidish")
    with pytest.raises(ValueError, match="dropout"):
        MLP(input_dim=4, output_dim=2, dropout=1.5)
