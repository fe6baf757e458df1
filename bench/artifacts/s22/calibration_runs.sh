cd /work/main
for spec in "pneumonia mobilenet_v2" "pneumonia tf_efficientnet_lite0" "plants tf_efficientnet_lite0" "plants mobilenet_v2"; do
  set -- $spec
  for s in 0 1 2; do
    OMP_NUM_THREADS=1 .venv/bin/transferkit fit ../shared/data/$1 --model $2 --seed $s --no-report -q --out /tmp/s22/me/cal-$1-$2-s$s > /tmp/s22/me/cal-$1-$2-s$s.log 2>&1
  done
done
echo done > /tmp/s22/me/calruns.done
