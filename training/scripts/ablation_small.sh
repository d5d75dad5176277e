#!/usr/bin/env bash
# The small CPU ablation of issue 14 (training/RESULTS.md, "Image-level methods"): one method at
# the budget every row shares (ResNet-18 from scratch, 64x32, P 8 x K 4 per modality, Adam 1e-3,
# 1 warm-up epoch then cosine, 2 epochs x 40 batches = 5,120 images, one thread, seed 0) on
# out/regdb-x (`vireid synth regdb --out out/regdb-x --ids 400 --seed 21`), evaluated thermal ->
# visible on its 200 unseen test identities. Run from the repository root:
#
#   training/scripts/ablation_small.sh M [--set key=value ...]      (M: a config in training/configs)
#
# Writes out/runs/abl2-M/{last.pt,metrics.json[,translations.png]} and out/runs/abl2-M.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
M=${1:?usage: training/scripts/ablation_small.sh M [--set key=value ...]}
shift
PYTHONPATH=training${PYTHONPATH:+:$PYTHONPATH} .venv/bin/python -m vireid_train train \
  --config "training/configs/$M.toml" --no-resume \
  --set data.dataset=regdb --set data.root=out/regdb-x --set data.trial=1 --set data.height=64 --set data.width=32 \
  --set data.p=8 --set data.k=4 --set data.resident=true --set model.arch=resnet18 \
  --set train.epochs=2 --set train.batches_per_epoch=40 --set train.warmup_epochs=1 --set train.lr=1e-3 \
  --set train.threads=1 --set train.device=cpu --set train.eval_every=0 --set train.eval_trials=1 \
  --set train.log_every=20 --set train.seed=0 --set "train.out_dir=out/runs/abl2-$M" "$@" 2>&1 | tee "out/runs/abl2-$M.log"
