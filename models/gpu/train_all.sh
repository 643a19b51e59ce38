#!/usr/bin/env bash
# One GPU run that trains every shipped model on the full corpus (issue 14, item 4): the MDLM
# default, its chat fine-tune, the AR judge, Duo, LDDM, LDDM-U, BD3-LM, E2D2 (and its chat fine-tune) and the AS-ARM, all at once
# on one H100/H200 (each ~8-19M parameters: the GPU's memory holds them all), inside one device
# call of at most 10 minutes. The weights come back as fp16 state dicts and are exported HERE,
# on the CPU, by the same exporters the tests check (the device's torch 2.x exports differently).
#
#   here:   bash models/gpu/train_all.sh --prepare
#             builds the data if missing (models/build_data.sh: .work/tok/{tokenizer.json,
#             train.bin,val.bin,chat_train.bin,chat_train.idx}), checks what would travel against
#             the device tool's 64 MiB and prints the calls to make
#   there:  bash models/gpu/train_all.sh --run [--minutes 6] [--sft-minutes 1.5]
#             (the default and E2D2 pre-train for minutes - sft-minutes, then their chat SFT runs)
#             trains; $OUT gets summary.json and the first parts of the weights
#   there:  bash models/gpu/train_all.sh --collect K      (K = 1, 2, ...: call at once, while warm)
#             copies the next parts into $OUT (at most 4 parts of 15 MiB a call: the tool returns
#             8 files, 16 MiB each, 64 MiB a call)
#   here:   bash models/gpu/train_all.sh --import PARTS_DIR [--zoo .work/zoo-new]
#             joins the parts, exports every model with its card data into the zoo folder given
#             (never straight into models/zoo: what ships is decided on the cards)
#   here:   bash models/gpu/train_all.sh --smoke [--data DIR] [--work DIR]
#             the whole path on the CPU in a minute or two: tiny presets, seconds of training,
#             pack, collect, import, and every exported directory loaded by the engine
#             (models/tests/test_train_all.py runs it on generated data)
# Options: --data DIR (default .work/tok), --work DIR (default .work/train-all), DEVICE (cuda).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY=${PYTHON:-python3}
mode=""; minutes=6; sft_minutes=1.5; data="$ROOT/.work/tok"; work="$ROOT/.work/train-all"
zoo="$ROOT/.work/zoo-new"; parts_in=""; collect=0; work_set=0
DEVICE=${DEVICE:-cuda}
PART_MB=15; PARTS_PER_CALL=4
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prepare|--run|--smoke) mode=${1#--} ;;
    --collect) mode=collect; collect=$2; shift ;;
    --import) mode=import; parts_in=$(realpath "$2"); shift ;;
    --minutes) minutes=$2; shift ;;
    --sft-minutes) sft_minutes=$2; shift ;;
    --data) data=$(realpath "$2"); shift ;;
    --work) work=$(realpath -m "$2"); work_set=1; shift ;;
    --zoo) zoo=$(realpath -m "$2"); shift ;;
    *) echo "train_all: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $mode ]] || { sed -n 2,25p "$0"; exit 2; }
# Here, Debian's torch 1.13 (/usr/bin/python3, what the exporters are tested with); there, the
# image's python3 with its CUDA torch.
case $mode in prepare|import|smoke) PY=${PYTHON:-/usr/bin/python3} ;; esac

# name | what trains it (a dlm.train family and preset, or the chat SFT) | its flags
# The presets are the GPU ones of the per-family scripts beside this one (train_*.sh), with
# 'judge-8k' for 'judge' (the same width, one layer fewer, for the 8192-token vocabulary).
RUNS=(
  "default|mdlm:default|--loss-weighting unweighted"
  "judge|ar:judge-8k|"
  "duo|duo:judge-8k|"
  "lddm|lddm:judge-8k|--loss-weighting unweighted"
  "lddmu|lddm-u:judge-8k|"
  "bd3lm|bd3lm:judge-8k|--block-sizes 4,8,16 --t-min 0.3 --t-max 0.8 --loss-weighting unweighted"
  "e2d2|e2d2:judge-8k|--dec-layers 2 --block-sizes 4,8"
  "asarm|asarm:shipped|"
)
# The chat model: the default's weights after pre-training, then LLaDA-style SFT mixed with text
# (models/dlm/sft.py). --pad-weight 0.1: the CPU run's [EOS] padding at full weight taught
# unconditional sampling to write only [EOS] (docs/models.md).
CHAT_FLAGS="--lr 1e-4 --ema 0.99 --sft-batch 64 --text-batch 32 --text-every 2 --canvas-max 64 --pad-weight 0.1 --warmup-minutes 0.1 --eval-minutes 100 --ckpt-minutes 100 --dev 64 --val-windows 64"
if [[ $mode == smoke ]]; then
  # SMOKE_PRESET: tiny (2 layers, the default) or test (1 layer: models/tests/test_train_all.py)
  sp=${SMOKE_PRESET:-tiny}
  RUNS=("${RUNS[@]/:default|/:$sp|}"); RUNS=("${RUNS[@]/:judge-8k|/:$sp|}"); RUNS=("${RUNS[@]/:shipped|/:$sp|}")
  RUNS=("${RUNS[@]/e2d2:test|/e2d2:tiny|}")  # E2D2 splits its layers: it needs two at least
  RUNS=("${RUNS[@]/--dec-layers 2/--dec-layers 1}")
  RUNS=("${RUNS[@]/--block-sizes 4,8,16/--block-sizes 4,8}")
  CHAT_FLAGS="--sft-batch 4 --text-batch 2 --text-seq 32 --canvas-max 16 --max-len 32 --pad-weight 0.1 --dev 4 --val-windows 2 --warmup-minutes 0 --threads 1"
fi

need_data() {
  local f
  for f in tokenizer.json train.bin val.bin chat_train.bin chat_train.idx; do
    [[ -f $data/$f ]] || { echo "train_all: $data/$f is missing (bash models/build_data.sh builds it)" >&2; return 1; }
  done
}

train() {  # device, minutes, sft minutes, extra dlm.train flags for every run
  local dev=$1 min=$2 sft=$3 extra=$4 spec name fam preset flags pids=()
  rm -rf "$work/runs" && mkdir -p "$work/runs"
  export PYTHONUNBUFFERED=1
  for spec in "${RUNS[@]}"; do
    IFS='|' read -r name fam flags <<<"$spec"
    preset=${fam#*:}; fam=${fam%%:*}
    # The two chat models (MDLM default, E2D2) fine-tune after their pre-training, inside the same minutes.
    local m=$min; [[ $name == default || $name == e2d2 ]] && m=$("$PY" -c "print(max(0.05, $min - $sft))")
    # A run that overstays its budget (start-up, evaluations) is cut, so the weights of the
    # others still come back inside the call: dlm.train saves ema.pt only at its end, so the
    # cap leaves it two minutes past the budget.
    local cap; cap=$("$PY" -c "print(int(($min + 2) * 60))")
    mkdir -p "$work/runs/$name"
    # shellcheck disable=SC2086
    (cd models && timeout "$cap" "$PY" -m dlm.train --family "$fam" --preset "$preset" --data "$data" --out "$work/runs/$name" \
       --time-budget "$m" --eval-every 1000 --device "$dev" $flags $extra > "$work/runs/$name/train.log" 2>&1 || exit $?
     if [[ $name == default ]]; then
       mkdir -p "$work/runs/chat"
       "$PY" -m dlm.sft --init "$work/runs/default" --chat "$data/chat_train" --text "$data" --out "$work/runs/chat" \
         --minutes "$sft" --device "$dev" $CHAT_FLAGS ${SFT_EXTRA:-} > "$work/runs/chat/stdout.log" 2>&1 || exit $?
     elif [[ $name == e2d2 ]]; then
       mkdir -p "$work/runs/chat-e2d2"
       "$PY" -m dlm.sft --family e2d2 --init "$work/runs/e2d2" --chat "$data/chat_train" --text "$data" --out "$work/runs/chat-e2d2" \
         --minutes "$sft" --device "$dev" $CHAT_FLAGS ${SFT_EXTRA:-} > "$work/runs/chat-e2d2/stdout.log" 2>&1 || exit $?
     fi) &
    pids+=($!)
  done
  local failed=0 p
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  for d in "$work"/runs/*/; do
    echo "--- $(basename "$d"): $(tail -n 1 "$d/train.log" 2>/dev/null | cut -c1-300)"
  done
  return $failed
}

pack() {  # fp16 weights + results + log per run -> one tar in parts of PART_MB
  rm -rf "$work/ret" "$work/parts" && mkdir -p "$work/ret" "$work/parts"
  "$PY" - "$work/runs" "$work/ret" <<'PY'
import json, os, shutil, sys, torch
runs, ret = sys.argv[1:3]
summary = {}
for name in sorted(os.listdir(runs)):
    src = os.path.join(runs, name)
    if not os.path.exists(os.path.join(src, 'ema.pt')):
        summary[name] = {'error': 'no ema.pt (see its train.log)'}
        continue
    dst = os.path.join(ret, name)
    os.makedirs(dst)
    sd = torch.load(os.path.join(src, 'ema.pt'), map_location='cpu')
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}, os.path.join(dst, 'ema16.pt'))
    for f in ('results.json', 'train.log'):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), dst)
    r = json.load(open(os.path.join(src, 'results.json')))
    summary[name] = {k: r.get(k) for k in ('family', 'preset', 'params', 'steps', 'tokens', 'wall_seconds', 'device')}
    summary[name]['validation'] = {k: r[k] for k in ('val_nll', 'val_ppl', 'val_nelbo') if k in r}
    summary[name]['last_eval'] = (r.get('history') or [None])[-1]
json.dump(summary, open(os.path.join(ret, 'summary.json'), 'w'), indent=1)
print(json.dumps(summary, indent=1))
PY
  tar -C "$work/ret" -cf - . | split -b "${PART_MB}M" -d -a 2 - "$work/parts/weights.tar.part"
  cp "$work/ret/summary.json" "$work/parts/summary.json"
  local n; n=$(ls "$work/parts" | grep -c '^weights.tar.part')
  echo "train_all: $n parts of at most ${PART_MB} MiB; calls to collect them: $(( (n + PARTS_PER_CALL - 1) / PARTS_PER_CALL ))" \
       "(--run returns the first ${PARTS_PER_CALL}, then --collect 1, 2, ...)"
}

copy_parts() {  # call index K -> parts [K*PER, (K+1)*PER) into $1
  local k=$1 dest=$2 i=0 f
  mkdir -p "$dest"
  for f in "$work"/parts/weights.tar.part*; do
    if (( i >= k * PARTS_PER_CALL && i < (k + 1) * PARTS_PER_CALL )); then cp "$f" "$dest/"; fi
    i=$((i + 1))
  done
  cp "$work/parts/summary.json" "$dest/"
  ls -l "$dest"
}

import_runs() {  # parts folder -> exported model directories under $zoo
  local tmp="$zoo/.runs"
  rm -rf "$tmp" && mkdir -p "$tmp"
  cat "$parts_in"/weights.tar.part* | tar -C "$tmp" -xf -
  "$PY" - "$tmp" <<'PY'
import os, sys, torch
for name in sorted(os.listdir(sys.argv[1])):
    d = os.path.join(sys.argv[1], name)
    if os.path.exists(os.path.join(d, 'ema16.pt')):
        sd = torch.load(os.path.join(d, 'ema16.pt'))
        torch.save({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}, os.path.join(d, 'ema.pt'))
PY
  local tok="$data/tokenizer.json" ok=0 bad=0 name
  [[ -f $tok ]] || tok=$(realpath models/zoo/default/tokenizer.json)
  for d in "$tmp"/*/; do
    name=$(basename "$d"); [[ -f $d/ema.pt ]] || { echo "train_all: $name has no weights" >&2; bad=$((bad + 1)); continue; }
    local out="$zoo/$name" r=(--run "$d" --tokenizer "$tok" --out "$zoo/$name" --fp16-weights)
    if (cd models && case $name in
      default) "$PY" -m dlm.export "${r[@]}" --name dlm-default && "$PY" -m dlm.export_kv --model "$out" ;;
      chat) "$PY" -m dlm.export "${r[@]}" --name dlm-chat --chat-template data/chat_template.json \
              --description "MDLM chat model: the default pre-trained on the full corpus, then LLaDA-style SFT" &&
            "$PY" -m dlm.export_kv --model "$out" ;;
      chat-e2d2) "$PY" -m dlm.e2d2_export "${r[@]}" --name e2d2-chat --chat-template data/chat_template.json \
              --description "E2D2 chat model: E2D2 pre-trained on the full corpus, then LLaDA-style SFT (dlm.sft --family e2d2)" ;;
      judge) "$PY" -m dlm.export "${r[@]}" --name judge ;;
      duo|lddm|lddmu) "$PY" -m dlm.export_uniform "${r[@]}" --name "$name" --card ;;
      bd3lm) "$PY" -m dlm.export_bd3lm "${r[@]}" --name bd3lm ;;
      e2d2) "$PY" -m dlm.e2d2_export "${r[@]}" --name e2d2 --card ;;
      asarm) "$PY" -m dlm.asarm_export "${r[@]}" --name asarm --description "Any-subset autoregressive model (two-stream), decoded with ASSD" ;;
      *) echo "train_all: no exporter for '$name'" >&2; false ;;
    esac) > "$zoo/$name.export.log" 2>&1; then ok=$((ok + 1)); echo "exported $out"
    else bad=$((bad + 1)); echo "train_all: exporting $name failed: $zoo/$name.export.log" >&2; tail -n 5 "$zoo/$name.export.log" >&2; fi
  done
  echo "train_all: $ok exported, $bad failed, into $zoo"
  echo "next: cards (npm run card -- --model DIR ...), int8 variants (models/quantize_zoo.sh), then ship what beats models/zoo on them"
  return $bad
}

case $mode in
  prepare)
    need_data 2>/dev/null || bash models/build_data.sh
    need_data
    tree=$(git ls-files -z | grep -zv '^models/zoo/' | xargs -0 stat -c %s 2>/dev/null | awk '{n += $1} END {print n}')
    tok=$(du -cb "$data"/{tokenizer.json,train.bin,val.bin,chat_train.bin,chat_train.idx} | tail -n 1 | cut -f1)
    total=$(( (tree + tok) / 1048576 ))
    echo "train_all: the checkout without models/zoo $((tree / 1048576)) MiB + data $((tok / 1048576)) MiB = $total MiB (the device tool carries 64)"
    (( total < 64 )) || { echo "train_all: too big to travel" >&2; exit 1; }
    rel=${data#"$ROOT"/}
    cat <<EOF
Calls (the device tool), one after the other while the machine is warm (it idles out in 30 s):
  git sparse-checkout set --no-cone '/*' '!/models/zoo/'
  run  carry=["$rel"]  timeout_s=600  command: bash models/gpu/train_all.sh --run --data $rel
  run  command: bash models/gpu/train_all.sh --collect 1      (and 2, 3, ... as --run printed)
  git sparse-checkout disable
then copy each call's files into one folder here and: bash models/gpu/train_all.sh --import FOLDER
EOF
    ;;
  run)
    need_data
    started=$(date +%s)
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
    # A run that overstays is cut so the parts still come back inside the call.
    fail=0
    train "$DEVICE" "$minutes" "$sft_minutes" "" || fail=$?
    echo "train_all: training took $(( $(date +%s) - started )) s, $fail run(s) failed"
    pack
    copy_parts 0 "${OUT:-$work/out}"
    cp "$work"/runs/*/train.log "${OUT:-$work/out}/" 2>/dev/null || true
    echo "train_all: done in $(( $(date +%s) - started )) s"
    ;;
  collect) copy_parts "$collect" "${OUT:-$work/out}" ;;
  import) import_runs ;;
  smoke)
    need_data
    (( work_set )) || work="$ROOT/.work/train-all-smoke"
    zoo="$work/zoo"
    export DLM_THREADS=1
    train cpu 0.03 0.02 "--max-steps 2 --val-windows 2" || { echo "train_all: a smoke training failed" >&2; exit 1; }
    pack
    rm -rf "$work/back"
    n=$(ls "$work/parts" | grep -c '^weights.tar.part')
    for ((k = 0; k * PARTS_PER_CALL < n; k++)); do copy_parts "$k" "$work/back" >/dev/null; done
    parts_in="$work/back"
    import_runs
    [[ -f dist/engine/manifest.js ]] || npx tsc -p tsconfig.json
    for d in "$zoo"/*/; do
      [[ $(basename "$d") == .runs ]] && continue
      node -e "import('./dist/engine/manifest.js').then((m) => { const md = m.loadModelDir(process.argv[1], { served: true }); console.log('loads', process.argv[1], md.manifest.family); })" "$d"
    done
    ;;
esac
