#!/usr/bin/env bash
# Rebuild the model bundles shipped in the package (src/braintumor/bundles/) from ../shared/data:
# train each model (skipped when its run folder is finished), then bundle one fold's weights
# (float16) with the exact training command, the data, and the metrics each model measured on
# patients it never saw, and add each bundle's input profile. Hours on 2 CPU cores when nothing is
# trained yet (five figshare U-Net folds in float32: ~3.5 h; the LGG U-Net: 63 min with native bf16). Name
# bundles to build only those.
#   bash scripts/build_bundles.sh [t1ce] [flair-lgg] [kaggle4]
set -euo pipefail
cd "$(dirname "$0")/.."
BT=${BT:-.venv/bin/braintumor}
D=../shared/data
OUT=src/braintumor/bundles

TARGETS=" ${*:-t1ce flair-lgg kaggle4} "
want() { [[ $TARGETS == *" $1 "* ]]; }

# t1ce: the official figshare folds (the U-Net's 5-fold CV figures go into the bundle), fold 0's
# networks shipped: the U-Net, the factor-3.0 classifier (the factor chosen on validation) averaged
# with the fold's classifiers at the sweep's other factors, and the gate trained on Kaggle less its
# copies of fold 0's test patients
SEG=(cv --config configs/figshare-unet-cpu.yaml --data $D/figshare --out runs/figshare-unet-cv)
CLS=(cv --config configs/figshare-roi-cpu.yaml --data $D/figshare --out runs/figshare-roi-w24
     --set "model.kwargs={width: 24}" --only 0 --only 1 --only 2)
MEMBERS=(sweep-roi --config configs/figshare-roi-cpu.yaml --data $D/figshare --out runs/figshare-roi-sweep-w24
         --factors 1.0,1.5,2.0,3.0,whole --only 0 --set "model.kwargs={width: 24}")
GATE=(train classify --config configs/kaggle4-cpu.yaml --data $D/kaggle4 --out runs/gate-w24-figfold/fold0
      --set "model.kwargs={width: 24}" --set train.epochs=12 --set data.exclude_copies_of=$D/figshare
      --set data.exclude_copies_fold=0)
KAGGLE=(train classify --config configs/kaggle4-cpu.yaml --data $D/kaggle4 --out runs/kaggle4-w24-e24
        --set "model.kwargs={width: 24}")
LGG=(train segment --config configs/lgg-unet-cpu.yaml --data $D/lgg128 --out runs/lgg-flair-140ep-fold0 --set train.epochs=140
     --set train.max_minutes=0)

shown() { printf 'braintumor'; printf ' %q' "$@"; }
train() { local done=$1; shift; [ -f "$done" ] || "$BT" "$@"; }

if want t1ce; then
  train runs/figshare-unet-cv/cv_metrics.json "${SEG[@]}"
  train runs/figshare-roi-w24/cv_metrics.json "${CLS[@]}"
  train runs/figshare-roi-sweep-w24/sweep.json "${MEMBERS[@]}"
  train runs/gate-w24-figfold/fold0/metrics.json "${GATE[@]}"
  SWEPT=runs/figshare-roi-sweep-w24
  "$BT" bundle create --seg runs/figshare-unet-cv/fold0 --cls runs/figshare-roi-w24/fold0 --cls $SWEPT/roi-1.0/fold0 \
    --cls $SWEPT/roi-1.5/fold0 --cls $SWEPT/roi-2.0/fold0 --cls $SWEPT/roi-whole/fold0 --gate runs/gate-w24-figfold/fold0 \
    --out $OUT/t1ce --name t1ce --bundle-version 2 --fp16 --overwrite \
    --command "$(shown "${SEG[@]}"); $(shown "${CLS[@]}"); $(shown "${MEMBERS[@]}"); $(shown "${GATE[@]}") (fold 0's networks: official fold 0 held out; the five classifiers averaged, the four that read the crop weighed by the U-Net's confidence in its mask (mask_confidence_floor 0.9), without a region-feature forest, which added nothing to the average in the 5-fold CV)" \
    --data "T1-CE. Segmenter and tumour-region classifiers (expansion factor 3.0, averaged with 1.0, 1.5, 2.0 and the whole slice): figshare (Cheng et al.) ../shared/data/figshare, 2,545 slices of 196 patients at 256 px, official patient-level fold 0 held out. Gate: Kaggle Brain Tumor MRI ../shared/data/kaggle4, its 5,084 Training images less the copies of fold 0's test patients' slices (excluded_copies.json), scored on its 147 Testing images."
  "$BT" bundle profile $OUT/t1ce --data $D/figshare --source "figshare T1-CE"
  "$BT" bundle info t1ce
fi
if want flair-lgg; then
  train runs/lgg-flair-140ep-fold0/metrics.json "${LGG[@]}"
  # bundle metrics as the analysis runs it: slice by slice, flip TTA, largest 2D component + hole filling
  [ -n "$(grep -o '"tta": true' runs/lgg-flair-140ep-fold0/metrics.json)" ] || "$BT" evaluate runs/lgg-flair-140ep-fold0 --tta --postprocess --postprocess-scope slice
  "$BT" bundle create --seg runs/lgg-flair-140ep-fold0 --out $OUT/flair-lgg --name flair-lgg --bundle-version 2 --fp16 --overwrite \
    --command "$(shown "${LGG[@]}"); braintumor evaluate runs/lgg-flair-140ep-fold0 --tta --postprocess --postprocess-scope slice" \
    --data "FLAIR (3-channel pre-contrast/FLAIR/post-contrast). LGG (Buda et al., TCGA) sample ../shared/data/lgg128 at 128 px, 89 patients, patient-level fold 0 of 5 held out (18 test patients); MONAI residual U-Net, channels 16-256, 140 epochs (the configuration's network and settings over the whole 60-min budget)."
  "$BT" bundle profile $OUT/flair-lgg --data $D/lgg128 --source "LGG FLAIR (pre-contrast, FLAIR, post-contrast)"
  "$BT" bundle info flair-lgg
fi
if want kaggle4; then
  train runs/kaggle4-w24-e24/metrics.json "${KAGGLE[@]}"
  "$BT" bundle create --cls runs/kaggle4-w24-e24 --out $OUT/kaggle4 --name kaggle4 --fp16 --overwrite \
    --command "$(shown "${KAGGLE[@]}")" \
    --data "Whole slices, any of T1, T2, T1-CE, FLAIR as in the Kaggle Brain Tumor MRI dataset: ../shared/data/kaggle4, trained on its 5,084 Training images (figshare + SARTAJ + Br35H, at most 160 px), scored on its 147 Testing images (106 of them have a copy in Training). 4 classes: glioma, meningioma, notumor, pituitary. No segmenter: no mask, no tumour size."
  "$BT" bundle profile $OUT/kaggle4 --data $D/kaggle4 --source "Kaggle Brain Tumor MRI (whole slices)"
  "$BT" bundle info kaggle4
fi
