"""Which tool each conversion step needs, which extra installs it, and where it runs.

The converter backends cannot share one environment: ``onnx2tf`` pins
``ai-edge-litert==2.1.0`` (and exact versions of tensorflow, onnx, onnxruntime,
protobuf...), ``ai-edge-quantizer`` pins ``ai-edge-litert==2.3.0``. So each backend has
its own extra and its own tool environment (a virtualenv), and edgepose's own
environment stays light:

==================  ============================================  ========================
extra               installs                                      steps
==================  ============================================  ========================
(none)              edgepose                                      float32, float16, verify
``convert-quant``   ai-edge-quantizer                             quantize int8-*
``convert-tf``      tensorflow 2.19, tf2onnx, onnx2tf, onnxsim,   to-onnx, from-onnx,
                    onnxruntime                                   verify of .onnx files, tfjs
==================  ============================================  ========================

``edgepose convert STEP`` runs in the current interpreter when the step's tool imports
there; otherwise it re-runs itself (``python -m converters.cli STEP ...``) with the
Python of the extra's tool environment, found in this order:

1. ``$EDGEPOSE_CONVERT_QUANT_PYTHON`` / ``$EDGEPOSE_CONVERT_TF_PYTHON``;
2. ``.venv-convert-quant`` / ``.venv-convert-tf`` in the current folder or the source
   checkout edgepose is installed from;
3. ``$EDGEPOSE_CACHE/venvs/convert-quant`` (default ``~/.cache/edgepose/venvs/...``).

When none has the tool, the step fails with one line naming the extra to install.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

from edgepose.errors import BackendError
from edgepose.quiet import real_stderr

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str        # what the user knows it as
    module: str      # what must import
    extra: str       # the edgepose extra that installs it
    alone: str | None = None  # a lighter install, where the package needs nothing pinned


TOOLS = {t.name: t for t in (
    Tool("ai-edge-quantizer", "ai_edge_quantizer", "convert-quant"),
    Tool("tensorflow", "tensorflow", "convert-tf"),
    Tool("tf2onnx", "tf2onnx", "convert-tf"),
    Tool("onnx2tf", "onnx2tf", "convert-tf"),
    Tool("onnx", "onnx", "convert-tf", "pip install onnx"),
    Tool("onnxruntime", "onnxruntime", "convert-tf", 'pip install "edgepose[onnxruntime]"'),
)}
ENV_VARS = {"convert-quant": "EDGEPOSE_CONVERT_QUANT_PYTHON",
            "convert-tf": "EDGEPOSE_CONVERT_TF_PYTHON"}
# Set in a re-run so that a tool environment never hands the step on again.
RERUN_MARK = "EDGEPOSE_CONVERT_IN_TOOL_ENV"


def available(name: str) -> bool:
    """Whether ``name``'s module can be imported here (without importing it)."""
    return importlib.util.find_spec(TOOLS[name].module) is not None


def install_hint(name: str) -> str:
    tool = TOOLS[name]
    extra = tool.extra
    return (f"{name} is not installed: " + (f"{tool.alone} here, or " if tool.alone else "")
            + f"pip install 'edgepose[{extra}]' into its own environment (see docs/converters.md; "
            f"e.g. .venv-convert-{extra.split('-')[-1]})")


def require(name: str) -> None:
    """BackendError with a one-line install hint unless ``name`` imports here."""
    if not available(name):
        raise BackendError(install_hint(name))


def environment_python(extra: str) -> Path | None:
    """The Python of ``extra``'s tool environment, or None when there is none."""
    env = os.environ.get(ENV_VARS[extra])
    candidates = [Path(env)] if env else []
    folder = f".venv-{extra}"
    for base in (Path.cwd(), ROOT):
        candidates.append(base / folder / "bin" / "python")
    from edgepose.models import cache_dir

    candidates.append(cache_dir() / "venvs" / extra / "bin" / "python")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    if env:
        log.warning("%s=%s is not an executable Python", ENV_VARS[extra], env)
    return None


def run_in_tool_env(needs: list[str], argv: list[str] | None) -> int | None:
    """Re-run ``converters.cli argv`` in the tool environment that has ``needs`` when
    they do not import here. Returns its exit code, or None when the step can run here.
    BackendError (naming the extra) when no environment has them."""
    missing = [n for n in needs if not available(n)]
    if not missing:
        return None
    extra = TOOLS[missing[0]].extra
    if os.environ.get(RERUN_MARK):
        raise BackendError(install_hint(missing[0]) + f" (the {extra} environment lacks it)")
    python = environment_python(extra)
    if python is None or argv is None:
        raise BackendError(install_hint(missing[0]))
    # TensorFlow's C++ start-up chatter (cuDNN / XLA registration) is noise on a CPU box.
    env = dict(os.environ, **{RERUN_MARK: "1"})
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The checkout first on sys.path, so the tool environment runs this same code.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # Tools that shell out (onnx2tf runs `onnxsim`) find the environment's scripts.
    env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", "")])
    log.info("running in the %s environment: %s", extra, python)
    # The real stderr, where this process points its own at /dev/null (quiet.py).
    real = real_stderr()
    redirect = {} if real is None else {"stderr": real}
    return subprocess.call([str(python), "-m", "converters.cli", *argv], env=env, **redirect)


def converted_dir() -> Path:
    """Default output folder: ``$EDGEPOSE_CACHE/converted`` (``~/.cache/edgepose/converted``)."""
    from edgepose.models import cache_dir

    return cache_dir() / "converted"


def tool_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment_facts() -> dict:
    """Python and tool versions of this interpreter, for reports."""
    return {"python": sys.version.split()[0], "executable": sys.executable,
            **{name: tool_version(name) for name in ("edgepose", "ai-edge-litert", *TOOLS)
               if tool_version(name)}}
