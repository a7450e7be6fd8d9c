"""Plots a reviewer would rather look at than read, each a pure function `(data) → Figure`.

Confusion matrix and reliability diagram for classification, predicted-vs-true scatter for regression,
a 2-D projection of embeddings for metric learning, and loss/metric curves for every run. matplotlib
runs headless (Agg); nothing here touches MLflow — `tracking` saves the figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor


def confusion_matrix_figure(predicted: Tensor, targets: Tensor, class_names: Sequence[str]) -> Figure:
    """Row-normalised confusion matrix (rows: true class) with counts in the cells."""
    num_classes = len(class_names)
    counts = torch.bincount(targets * num_classes + predicted, minlength=num_classes**2)
    counts = counts.reshape(num_classes, num_classes)  # (true, predicted)
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    figure, axes = plt.subplots(figsize=(1.2 + 0.5 * num_classes, 1 + 0.5 * num_classes))
    axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    for true in range(num_classes):
        for guess in range(num_classes):
            if counts[true, guess]:
                colour = "white" if rates[true, guess] > 0.5 else "black"
                axes.text(
                    guess, true, str(int(counts[true, guess])), ha="center", va="center", fontsize=7, color=colour
                )
    axes.set(xticks=range(num_classes), yticks=range(num_classes), xlabel="predicted", ylabel="true")
    axes.set_xticklabels(class_names, rotation=45, fontsize=7)
    axes.set_yticklabels(class_names, fontsize=7)
    axes.set_title("Confusion matrix (test)")
    figure.tight_layout()
    return figure


def reliability_figure(confidence: Tensor, correct: Tensor, bins: int = 15) -> Figure:
    """Reliability diagram: accuracy against confidence per bin; the gap to the diagonal is miscalibration."""
    edges = torch.linspace(0, 1, bins + 1)
    index = torch.bucketize(confidence.clamp(0, 1), edges[1:-1])
    count = torch.bincount(index, minlength=bins).float()
    accuracy = torch.bincount(index, weights=correct.float(), minlength=bins) / count.clamp(min=1)
    mean_confidence = torch.bincount(index, weights=confidence.float(), minlength=bins) / count.clamp(min=1)
    ece = float((count / count.sum() * (accuracy - mean_confidence).abs()).sum())
    centres = (edges[:-1] + edges[1:]) / 2
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.bar(centres[count > 0], accuracy[count > 0], width=1 / bins, edgecolor="black", label="accuracy")
    axes.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=f"Reliability (ECE {ece:.3f})")
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure


def scatter_figure(predicted: Tensor, targets: Tensor) -> Figure:
    """Predicted against true values; points on the diagonal are exact."""
    predicted, targets = predicted.reshape(-1), targets.reshape(-1)
    low, high = (
        float(torch.minimum(predicted.min(), targets.min())),
        float(torch.maximum(predicted.max(), targets.max())),
    )
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.scatter(targets, predicted, s=6, alpha=0.6)
    axes.plot([low, high], [low, high], "--", color="grey")
    axes.set(xlabel="true", ylabel="predicted", title="Predicted vs true (test)")
    figure.tight_layout()
    return figure


def embedding_figure(embeddings: Tensor, labels: Tensor, class_names: Sequence[str] = ()) -> Figure:
    """The first two principal components of the embeddings, coloured by class."""
    centred = embeddings.float() - embeddings.float().mean(dim=0)
    if centred.shape[1] > 2:
        _, _, components = torch.pca_lowrank(centred, q=2, center=False)
        points = centred @ components  # (N, 2)
    else:
        points = torch.nn.functional.pad(centred, (0, 2 - centred.shape[1]))
    figure, axes = plt.subplots(figsize=(5, 4.5))
    for label in labels.unique().tolist():
        mask = labels == label
        name = class_names[label] if label < len(class_names) else str(label)
        axes.scatter(points[mask, 0], points[mask, 1], s=6, label=name)
    axes.legend(fontsize=7, markerscale=2, loc="best")
    axes.set(xlabel="PC 1", ylabel="PC 2", title="Test embeddings (PCA)")
    figure.tight_layout()
    return figure


def curves_figure(history: Mapping[str, Sequence[tuple[int, float]]]) -> Figure:
    """Loss and metric curves by epoch: one panel per metric name after the stage (`loss`, …)."""
    names = sorted({key.split("/", 1)[1] for key in history})
    figure, panels = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for axes, name in zip(panels[0], names, strict=True):
        for key in sorted(k for k in history if k.split("/", 1)[1] == name):
            steps, values = zip(*history[key], strict=True)
            axes.plot(steps, values, marker=".", label=key.split("/", 1)[0])
        axes.set(title=name, xlabel="epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize=7)
    figure.tight_layout()
    return figure
