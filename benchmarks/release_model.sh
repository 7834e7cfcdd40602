#!/usr/bin/env bash
# Make the bundled model from a checkpoint and measure everything its card reports, as JSON files.
#
#   AGECAM_ASSETS=../shared benchmarks/release_model.sh runs/NAME/best.pt OUT_DIR [DATA_ROOT]
#
# BUNDLED (default int8) names the variant that ships: it is made into OUT_DIR/bundled.onnx with flip test-time
# augmentation inside (agecam ensemble --flip, then agecam calibrate), which the edge benchmark and the scenario
# run, as the bundled model.
# DATA_ROOT holds appa-real/ and utkface/ (default: $AGECAM_ASSETS/data). Writes OUT_DIR/{fp32,int8,fp16}.onnx
# and OUT_DIR/*.json (a variant refused by its parity check leaves export-PRECISION.err): export reports, eval on both valid splits, ms per face, the edge benchmark and a
# 72-customer Challenge 25 scenario scored against its ground truth.
set -euo pipefail
checkpoint=$1
out=$2
data=${3:-$AGECAM_ASSETS/data}
mkdir -p "$out"
agecam=${AGECAM:-agecam}
bundled=${BUNDLED:-int8}

variants=()
for precision in fp32 fp16 int8; do
    # A variant that fails its parity check is refused by export; record why and go on without it.
    if $agecam --log-level WARNING export "$checkpoint" --out "$out/$precision.onnx" --precision "$precision" \
        --data "$data/appa-real" "$data/utkface" > "$out/export-$precision.json" 2> "$out/export-$precision.err"; then
        variants+=("$precision")
    fi
done
for precision in "${variants[@]}"; do
    for dataset in appa-real utkface; do
        $agecam --log-level WARNING eval --model "$out/$precision.onnx" --data "$data/$dataset" \
            --out "$out/eval-$precision-$dataset" --json > "$out/eval-$precision-$dataset.json"
    done
done
$agecam --log-level WARNING ensemble "$out/$bundled.onnx" --flip --out "$out/bundled.onnx" > "$out/ensemble.json"
$agecam --log-level WARNING calibrate "$out/bundled.onnx" --data "$data/appa-real" "$data/utkface" > "$out/calibrate.json"
for dataset in appa-real utkface; do
    $agecam --log-level WARNING eval --model "$out/bundled.onnx" --data "$data/$dataset" \
        --out "$out/eval-bundled-$dataset" --json > "$out/eval-bundled-$dataset.json"
done
models=()
for precision in "${variants[@]}" bundled; do models+=("$out/$precision.onnx"); done
$agecam bench model "${models[@]}" --json > "$out/speed.json"
for precision in fp32 "$bundled" bundled; do
    for clip in face-demographics-walking-and-pause head-pose-face-detection-female-and-male; do
        $agecam bench edge "$AGECAM_ASSETS/videos/$clip.gif" --model "$out/$precision.onnx" --loops 8 --json \
            > "$out/bench-edge-$precision-$clip.json"
    done
done

scenario="$out/scenario"
rm -rf "$scenario"
$agecam simulate --faces "$data/utkface" --out "$scenario" --customers 72 --seed 1 > /dev/null
config="$out/scenario-config.yaml"
printf 'age_model:\n  path: %s\n' "$(realpath "$out/bundled.onnx")" > "$config"
$agecam --config "$config" --log-level WARNING replay "$scenario/till.mp4" --pos "$scenario/pos.jsonl" --fast \
    --db "$scenario/run.db" --json > "$scenario/replay.json"
$agecam score "$scenario" --db "$scenario/run.db" --json > "$out/scenario-score.json"
echo "done: $out"
