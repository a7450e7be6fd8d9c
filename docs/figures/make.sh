#!/usr/bin/env bash
# Regenerates the loss figures of the README and the loss catalogue (docs/losses.md): bash docs/figures/make.sh (from the repository root, venv installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
lossforge=".venv/bin/lossforge"
"$lossforge" plot loss=l1,l2,huber --out docs/figures/regression.png
"$lossforge" plot loss=hinge,bce,focal --out docs/figures/margin.png
"$lossforge" plot loss=focal loss.gamma=0,0.5,1,2,5 --out docs/figures/focal.png
"$lossforge" plot loss=cauchy,tukey,quantile --out docs/figures/robust.png
"$lossforge" plot loss=cross_entropy,multiclass_hinge,ldam --out docs/figures/multiclass.png
"$lossforge" plot loss=contrastive,triplet --out docs/figures/metric.png
"$lossforge" plot loss=arcface,cosface,normalized_softmax --out docs/figures/proxy.png
"$lossforge" plot loss=supcon,circle,lifted_structure --out docs/figures/pairwise.png
