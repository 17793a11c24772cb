#!/usr/bin/env bash
# Rebuild the model bundles shipped in the package (src/braintumor/bundles/) from ../shared/data:
# train each model (skipped when its run folder is finished), then bundle its weights (float16) with
# the exact training command, the data and its figures, and add each bundle's input profile. t1ce is
# fold 0's networks and kaggle4 the Kaggle Training model, each scored on patients it never saw;
# flair-lgg is trained on all 89 LGG patients, its figures its configuration's CVs. Hours on 2 CPU
# cores when nothing is trained yet (five figshare U-Net folds in float32: ~3.5 h; the LGG U-Net on
# all 89 patients: 83 min with native bf16). Name bundles to build only those.
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
LGG=(train segment --config configs/lgg-unet-cpu.yaml --data $D/lgg128 --out runs/lgg-all89 --set data.split=all
     --set data.val_fraction=0 --set train.max_minutes=0)

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
  # every patient trains it, its last epoch is shipped; its figures are the configuration's CVs
  train runs/lgg-all89/metrics.json "${LGG[@]}"
  "$BT" bundle create --seg runs/lgg-all89 --out $OUT/flair-lgg --name flair-lgg --bundle-version 4 --fp16 --overwrite \
    --command "$(shown "${LGG[@]}")" \
    --data "FLAIR (3-channel pre-contrast/FLAIR/post-contrast). LGG (Buda et al., TCGA) sample ../shared/data/lgg128 at 128 px, trained on all 89 patients (no validation, last of 140 epochs); MONAI residual U-Net, channels 16-256, Dice over the whole batch + BCE; analysed with flip TTA at threshold 0.3 and the largest 3D component. No patient of the shared LGG data is unseen by it: the configuration's figures on unseen patients are its CVs (docs/RESULTS.md study 4): per-patient Dice 0.838 +- 0.038 in patient-level 5-fold CV, 0.820 +- 0.022 leaving one institution out (the mean of two trainings per site)."
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
