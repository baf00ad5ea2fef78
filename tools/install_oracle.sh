#!/usr/bin/env bash
# Installs the TEST-ONLY oracles: Lightricks' reference implementation (ltx-core / ltx-pipelines 1.0.0, LTX-2.0) and
# diffusers 0.42.1 (an independent implementation of LTX-2.0, 2.3 and 2.5), and OpenCV (cv2.Canny, the reference
# of our Canny edges; headless build, no GUI libraries).
# ltx-core pins torch~=2.7; we keep the torch 2.13 CPU build, so the oracle is installed without its pins and its
# real dependencies are installed explicitly. torchaudio's C extension is built for another torch and cannot load;
# ltx-core only uses torchaudio's pure-Python MelSpectrogram and resample, so the extension libraries are removed
# (torchaudio then reports the extension as absent instead of failing to import).
# comfy-kitchen (ComfyUI's quantisation library; its eager CPU backend) is the reference of ComfyUI's int8 /
# int8-convrot weight format; installed without dependencies (it needs only torch; its CUDA extension is not used).
set -euo pipefail
PY=${PYTHON:-python}
$PY -m pip install --quiet --no-deps "ltx-core==1.0.0" "ltx-pipelines==1.0.0"
$PY -m pip install --quiet einops "transformers>=4.52" accelerate "scipy>=1.14" tqdm pillow protobuf
$PY -m pip install --quiet --no-deps torchaudio
$PY -m pip install --quiet --no-deps "diffusers==0.42.1"
$PY -m pip install --quiet huggingface-hub regex requests importlib_metadata
$PY -m pip install --quiet "opencv-python-headless>=4.10,<5"
$PY -m pip install --quiet --no-deps "comfy-kitchen==0.2.40"
ta_dir=$($PY - <<'PYEOF'
import importlib.util, os
spec = importlib.util.find_spec("torchaudio")
print(os.path.dirname(spec.origin))
PYEOF
)
rm -f "$ta_dir"/lib/*.so
$PY -c "import torchaudio.transforms, ltx_core.model.transformer.model" >/dev/null
$PY -c "import diffusers.models.transformers.transformer_ltx2, diffusers.pipelines.ltx2.connectors" >/dev/null
$PY -c "import cv2" >/dev/null
$PY -c "from comfy_kitchen.backends.eager import quantization" >/dev/null
echo "oracles ready: ltx-core 1.0.0, diffusers 0.42.1, opencv-python-headless, comfy-kitchen 0.2.40"
