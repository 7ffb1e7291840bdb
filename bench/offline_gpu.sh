#!/bin/bash
# The offline world on a GPU (a device check, run there by hand): `reproduce --preset smoke`, then
# `--preset cpu` under a time limit (LIMIT_S, default 420 s), each stage's time and the key lines
# of the log into $OUT (default bench/results/offline_gpu). bench/results/offline_gpu_h200/ holds such runs (stages_cpu.json: bf16, 2026-11-26; stages_cpu_float32_cut.json: float32, cut in the RM stage).
#     OUT=/tmp/offline_gpu LIMIT_S=600 bash bench/offline_gpu.sh   (PRESETS="cpu": one preset)
OUT=${OUT:-bench/results/offline_gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 IGPT_CACHE=${IGPT_CACHE:-/tmp/igpt_cache}
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__, torch.cuda.is_available())"
for p in ${PRESETS:-smoke cpu}; do
  start=$(date +%s)
  timeout "${LIMIT_S:-420}" python3 -m igpt_lib reproduce --preset $p --out /tmp/offline_gpu_$p > "$OUT/log_$p.txt" 2>&1
  rc=$?
  echo "$p: exit $rc after $(( $(date +%s) - start )) s"
  cp /tmp/offline_gpu_$p/stages.json "$OUT/stages_$p.json" 2>/dev/null
  sed 's/\r/\n/g' "$OUT/log_$p.txt" | grep -E "^(reproduce|rm: accuracy|ppo: (policy|held-out|[0-9])|sft [a-z]+: kept|eval: headline|\| )|UserWarning" \
    > "$OUT/${p}_log_key_lines.txt"
  [ $rc = 0 ] || { grep -n -A25 Traceback "$OUT/log_$p.txt" | head -60; exit $rc; }
done
