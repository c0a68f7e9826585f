#!/usr/bin/env bash
# Regenerate the pictures and videos of docs/project.md, video.md, edit.md and figure.md from a
# trained model (default runs/shapes, made by the README's main job) into docs/img/.
set -euo pipefail
CKPT=${1:-runs/shapes}
OUT=${2:-docs/img}
mkdir -p "$OUT"

sgan figure truncation "$CKPT" --seeds 0-5 --out "$OUT/truncation.png"
sgan figure variation "$CKPT" --seeds 1,4 --samples 100 --out "$OUT/variation.png"
sgan figure noise "$CKPT" --seeds 0-3 --out "$OUT/noise.png"

# projection: project two images the model made, then one from the dataset preview if present
sgan generate "$CKPT" --seeds 11,12,13 --trunc 0.7 --save-latents --outdir "$OUT/gen"
sgan project "$CKPT" "$OUT/gen/seed0011.png" --out "$OUT/proj" --steps 1000 --video

# latent arithmetic: move seed 11 by the difference between seeds 12 and 13
sgan edit "$CKPT" --base "$OUT/gen/seed0011.npy" --from "$OUT/gen/seed0012.npy" --to "$OUT/gen/seed0013.npy" \
    --sweep -2,2,9 --out "$OUT/edit"

# videos
sgan video "$CKPT" --seeds 0-15 --grid 2x2 --loop --seconds-per-seed 1.5 --out "$OUT/walk.mp4"
sgan video "$CKPT" --mode noise --seeds 0-3 --seconds 4 --loop --out "$OUT/noise.mp4"
sgan video "$CKPT" --mode truncation --seeds 0-3 --psi-from 1 --psi-to -1 --seconds 4 --loop --out "$OUT/truncation.mp4"
sgan video "$CKPT" --latents "$OUT/gen/seed0011.npy" "$OUT/proj/seed0011.npy" "$OUT/gen/seed0012.npy" \
    --seconds-per-seed 1 --out "$OUT/latents.mp4"

# keep what the docs show; latents, noise maps and the projection's progress video are left out
rm -f "$OUT"/gen/*.npy "$OUT"/edit/*.npy "$OUT"/edit/sweep-*.png "$OUT"/proj/*.npy "$OUT"/proj/*.npz "$OUT"/proj/*.mp4
echo "wrote $OUT/"
