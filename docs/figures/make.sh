#!/usr/bin/env bash
# Regenerates the README's loss figures: bash docs/figures/make.sh (from the repository root, venv installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
lossforge=".venv/bin/lossforge"
"$lossforge" plot loss=l1,l2,huber --out docs/figures/regression.png
"$lossforge" plot loss=hinge,bce,focal --out docs/figures/margin.png
"$lossforge" plot loss=focal loss.gamma=0,0.5,1,2,5 --out docs/figures/focal.png
