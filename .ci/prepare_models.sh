#!/usr/bin/env bash
# The converter tool environments and the converted models the tests need, so that no test
# of a shipped feature skips for want of them (TF.js models: MoveNet, NanoDet, CenterNet,
# EfficientPose, PoseNet; the BlazePose landmark model as ONNX; OpenPose from its frozen
# graph; YOLO11n-pose's ONNX as TFLite and as its heads file). Nothing is downloaded but packages: the models are
# converted from ../shared/data/models (EDGEPOSE_OFFLINE=1).
#
#   bash .ci/prepare_models.sh [tools|models|all] [--env FILE]   # edgepose's venv active
#
# - Tool environments (docs/converters.md): one virtualenv per converter extra, made from
#   `python3` with edgepose's runtime requirements plus the extra's (edgepose itself comes
#   from the checkout: converters/tools.py puts it first on PYTHONPATH), kept in
#   $EDGEPOSE_CI_CACHE (default ~/.cache/edgepose/ci)/venvs/EXTRA-KEY, KEY a digest of the
#   requirement lines and the interpreter: a changed requirement makes a new one.
# - Converted models: written where the runtime finds them, $EDGEPOSE_CACHE/converted
#   (default ~/.cache/edgepose/converted), with a stamp (.ci-models) holding a digest of
#   the source models, the converter sources, this script and the tool environment. When
#   the stamp matches and every file is there, nothing is converted again.
# - FILE gets the `export` lines that point edgepose at the tool environments
#   (EDGEPOSE_CONVERT_TF_PYTHON, EDGEPOSE_CONVERT_QUANT_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

WHAT=all ENV_FILE=
while (($#)); do
    case $1 in
        tools|models|all) WHAT=$1 ;;
        --env) ENV_FILE=$2; shift ;;
        *) echo "usage: $0 [tools|models|all] [--env FILE]" >&2; exit 2 ;;
    esac
    shift
done

SHARED=$(cd "$ROOT/.." && pwd)/shared/data
CACHE=${EDGEPOSE_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgepose/ci}
PYTHON=${PYTHON:-python}          # edgepose's own environment (README's install)
BASE_PYTHON=${BASE_PYTHON:-python3}   # what the tool environments are made from
SCHEMA=1                          # bump to rebuild every cached tool environment

say() { printf '[prepare] %s\n' "$*" >&2; }

if [[ ! -d $SHARED/models/tfjs ]]; then
    say "$SHARED/models is absent: nothing converted (the tests that need it skip with a reason)"
    exit 0
fi

# The requirement lines of edgepose's runtime plus EXTRA, from pyproject.toml.
requirements() {
    "$PYTHON" - "$1" <<'EOF'
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli comes with the test extra
    import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
for line in project["dependencies"] + project["optional-dependencies"][sys.argv[1]]:
    print(line)
EOF
}

# tool_env EXTRA: sets TOOL_PYTHON to the Python of EXTRA's environment, built when absent.
tool_env() {
    local extra=$1 reqs key dir started
    reqs=$(requirements "$extra")
    key=$({ echo "schema $SCHEMA"; printf '%s\n' "$reqs"
            "$BASE_PYTHON" -c 'import platform, sys; print(sys.version, sys.platform, platform.machine(), platform.libc_ver())'
          } | sha256sum | cut -c1-16)
    dir=$CACHE/venvs/$extra-$key
    if [[ -f $dir/.ci-complete ]]; then
        say "$extra: cached tool environment $dir"
    else
        say "$extra: building the tool environment $dir from:"
        printf '%s\n' "$reqs" | sed 's/^/    /' >&2
        started=$SECONDS
        rm -rf "$dir"
        mkdir -p "$CACHE/venvs"
        "$BASE_PYTHON" -m venv "$dir"
        printf '%s\n' "$reqs" > "$dir/requirements.txt"
        "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$dir/requirements.txt"
        "$dir/bin/python" -m pip freeze --disable-pip-version-check > "$dir/pip-freeze.txt"
        touch "$dir/.ci-complete"
        say "$extra: built in $((SECONDS - started)) s, $(du -sh "$dir" | cut -f1)"
    fi
    touch "$dir"  # last used: environments unused for 30 days are removed below
    TOOL_PYTHON=$dir/bin/python
    TOOL_KEY=$key
}

mkdir -p "$CACHE"
find "$CACHE/venvs" -mindepth 1 -maxdepth 1 -type d -mtime +30 -exec rm -rf {} + 2>/dev/null || true

tool_env convert-tf
export EDGEPOSE_CONVERT_TF_PYTHON=$TOOL_PYTHON
tf_key=$TOOL_KEY
if [[ $WHAT != models ]]; then
    # No test runs ai-edge-quantizer through its environment yet; `edgepose convert
    # quantize --variant int8-*` (a shipped step) does, and this one builds in seconds.
    tool_env convert-quant
    export EDGEPOSE_CONVERT_QUANT_PYTHON=$TOOL_PYTHON
fi
if [[ -n $ENV_FILE ]]; then
    env | grep -E '^EDGEPOSE_CONVERT_(TF|QUANT)_PYTHON=' | sed 's/^/export /' > "$ENV_FILE"
fi
if [[ $WHAT == tools ]]; then exit 0; fi

# -- converted models -----------------------------------------------------------------------
# Sources (TF.js json + bin of every convertible model, the BlazePose full model) and the
# files the tests read.
mapfile -t listing < <("$PYTHON" - "$SHARED/models" <<'EOF'
import sys
from pathlib import Path

from edgepose import models, registry

shared = Path(sys.argv[1])
print("out", models.cache_dir() / "converted")
for m in registry.CONVERTIBLE_MODELS.values():
    print("src", shared / "tfjs" / m.filename)
    print("src", shared / "tfjs" / m.weights_filename)
    print("want", m.converted(".tflite").name)
    print("want", m.converted(".onnx").name)
full = models.KNOWN_MODELS["full"].filename
print("src", shared / full)
print("want", Path(full).with_suffix(".onnx").name)
for m in registry.FROZEN_GRAPHS.values():  # OpenPose: a TF1 frozen graph
    print("src", shared / m.folder / m.filename)
    print("want", m.converted(".tflite").name)
    print("want", m.converted(".onnx").name)
yolo = shared / "yolo" / registry.LOCAL_MODELS["yolo11n-pose"].filename  # AGPL-3.0: never shipped
if yolo.is_file():
    print("src", yolo)
    print("want", "yolo11n-pose.tflite")
    print("want", "yolo11n-pose_heads.onnx")
EOF
)
converted= sources=() wanted=()
for line in "${listing[@]}"; do
    case $line in
        "out "*) converted=${line#out } ;;
        "src "*) sources+=("${line#src }") ;;
        "want "*) wanted+=("${line#want }") ;;
    esac
done

code=(converters/*.py edgepose/models.py edgepose/registry.py edgepose/model_metadata.py .ci/prepare_models.sh)
key=$({ echo "tool $tf_key"; sha256sum "${sources[@]}" | cut -d' ' -f1
        for f in "${code[@]}"; do if [[ -f $f ]]; then sha256sum "$f"; fi; done
      } | sha256sum | cut -c1-16)
stamp=$converted/.ci-models
missing=()
for f in "${wanted[@]}"; do [[ -f $converted/$f ]] || missing+=("$f"); done
if [[ -f $stamp && $(cat "$stamp") == "$key" && ${#missing[@]} -eq 0 ]]; then
    say "converted models up to date in $converted (key $key)"
    exit 0
fi
if [[ -f $stamp && $(cat "$stamp") != "$key" ]]; then
    say "converted models in $converted are stale (key $(cat "$stamp") -> $key): converting again"
fi

mkdir -p "$CACHE/logs" "$converted"
rm -f "$stamp"
log=$CACHE/logs/convert-$key.log
export EDGEPOSE_OFFLINE=1
export EDGEPOSE_MODEL_PATH=$SHARED/models${EDGEPOSE_MODEL_PATH:+:$EDGEPOSE_MODEL_PATH}
images=$SHARED/images/mhp
convert() {
    local started=$SECONDS
    say "edgepose convert $*"
    if ! "$PYTHON" -m edgepose convert "$@" >> "$log" 2>&1; then
        say "FAILED: edgepose convert $* (log: $log):"
        tail -n 40 "$log" >&2
        exit 1
    fi
    say "  done in $((SECONDS - started)) s"
}
: > "$log"
# float32 and ONNX: what the runtime and the tests use. float16 is left out: centernet's
# float16 fails its accuracy gate (its top-100 list reorders near-equal scores,
# docs/converters.md), and `convert tfjs all` then exits 2.
convert tfjs all --variant float32 --variant onnx --images "$images"
convert to-onnx full --images "$images"
convert tf-graph openpose --images "$images"
if [[ " ${wanted[*]} " == *" yolo11n-pose.tflite "* ]]; then
    # YOLO11n-pose's TFLite, verified against ONNX Runtime on the CrowdPose photos
    convert from-onnx yolo11n-pose --images "$SHARED/images/crowdpose"
    # and its heads file (any input size), which --model yolo11n-pose then runs
    convert yolo-heads yolo11n-pose
fi
grep -E '^ +(float32|onnx) |^wrote ' "$log" | sed 's/^ */    /' >&2
for f in "${wanted[@]}"; do
    [[ -f $converted/$f ]] || { say "FAILED: $converted/$f was not written (log: $log)"; exit 1; }
done
echo "$key" > "$stamp"
say "converted models in $converted (key $key)"
