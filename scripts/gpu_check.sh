#!/usr/bin/env bash
# The device check (README "On a GPU"): `pytest -m cuda`, then every CUDA path against its CPU path, timed.
#   on the device machine:  bash scripts/gpu_check.sh            (reports in $OUT: gpu_check.json/.txt/.log, pytest_cuda.txt)
#   here, before lending:   bash scripts/gpu_check.sh --prepare  (fills .gpu_carry: tokenizer files + pydantic wheels)
#   CPU twin (CI):          bash scripts/gpu_check.sh --device cpu --tiny
# Arguments go to scripts/gpu_check.py (e.g. --only heal,bytes; GPU_CHECK_PYTEST=0 leaves pytest out).
# Whole run <= 8 minutes: pytest gets at most 120 s, the driver starts no new check after the rest of a 450 s
# budget and is stopped at 470 s (reports are rewritten after every check, so a stopped run still leaves them).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
CARRY=${TOKKIT_GPU_CARRY:-$REPO/.gpu_carry}
if [ "${1:-}" = "--prepare" ]; then  # here: the project's venv when there is one (its versions pick the wheels)
    [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
    exec "$PY" scripts/gpu_check.py --prepare
fi
OUT=${OUT:-$REPO/out/gpu_check}
mkdir -p "$OUT"
export OUT HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1
if compgen -G "$CARRY/whl/*.whl" >/dev/null; then  # pydantic and its needs: absent on the device image
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/tokkit-site \
        "$CARRY"/whl/*.whl || { echo "error: installing the carried wheels from $CARRY/whl failed" >&2; exit 2; }
    export PYTHONPATH=/tmp/tokkit-site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! "$PY" -c "import tokkit_cli" 2>/dev/null; then  # not installed (the device machine): cli/ is the tokkit_cli package
    mkdir -p /tmp/tokkit-cli && ln -sfn "$REPO/cli" /tmp/tokkit-cli/tokkit_cli
    export PYTHONPATH=$REPO:/tmp/tokkit-cli${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d "$CARRY/home" ] && export TOKKIT_HOME=$CARRY/home
start=$SECONDS
log=()
if [ "${GPU_CHECK_PYTEST:-1}" != 0 ]; then  # GPU_CHECK_PYTEST=0: a rerun of some checks only
    timeout 120 "$PY" -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider >"$OUT/pytest_cuda.txt" 2>&1
    echo "pytest -m cuda: $(tail -n 1 "$OUT/pytest_cuda.txt") ($((SECONDS - start)) s)"
    log=(--pytest-log "$OUT/pytest_cuda.txt")
fi
left=$((450 - (SECONDS - start)))
timeout $((left + 20)) "$PY" scripts/gpu_check.py --out "$OUT" --budget-s "$left" ${log[@]+"${log[@]}"} "$@" 2>"$OUT/gpu_check.log"
rc=$?
[ $rc -ne 0 ] && tail -n 5 "$OUT/gpu_check.log"
[ $rc -eq 124 ] && echo "error: the device check ran past its time limit; the reports hold the checks that finished"
exit $rc
