# Two commands do all the set-up:  `make demo` (the main job)  and  `make test`.
# Both create .venv on first use. torch: a torch already importable in the venv is kept (a CUDA
# build stays). Otherwise TORCH_SPEC is installed, in this order:
#   1. a wheel pip finds without any index (pip's find-links, e.g. the development machines' wheel
#      on disk), its dependencies then from pip's configured indexes: offline-safe where they are local;
#   2. else from TORCH_INDEX: PyTorch's CPU-only index when there is no NVIDIA GPU (no nvidia-smi),
#      so a laptop does not download the multi-GB CUDA build; with a GPU, pip's default index (CUDA).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,--index-url $(TORCH_CPU_INDEX))
PY := $(VENV)/bin/python
SGAN := $(VENV)/bin/sgan

.PHONY: setup demo test test-profiles test-browser clean-demo

setup: $(VENV)/.sgan-installed

$(VENV)/.sgan-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null \
	  || { $(PY) -m pip install --quiet --no-index --no-deps "$(TORCH_SPEC)" 2>/dev/null \
	       && $(PY) -m pip install --quiet "$(TORCH_SPEC)"; } \
	  || $(PY) -m pip install --quiet $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: setup
	$(SGAN) prepare-dataset builtin:shapes data/shapes.lmdb --max-size 32 --count 20000 --overwrite
	$(SGAN) train data/shapes.lmdb --out runs/shapes --preset cpu --minutes 20 --resume auto
	$(SGAN) generate runs/shapes --seeds 0-31 --grid --outdir out/samples
	$(SGAN) mix runs/shapes --rows 0-4 --cols 5-10 --styles coarse --out out/mix-coarse.png
	$(SGAN) mix runs/shapes --rows 0-4 --cols 5-10 --styles 4-7 --out out/mix-middle.png
	$(SGAN) generate runs/shapes --seeds 1,2 --save-latents --outdir out/latents
	$(SGAN) mix runs/shapes --coarse out/latents/seed0001.npy --fine out/latents/seed0002.npy --out out/mix-files.png
	@echo "Samples: out/samples/grid.png; style mixing: out/mix-coarse.png, out/mix-middle.png, out/mix-files.png; run: runs/shapes/"

test: setup
	$(PY) -m pytest

# The suite again as if on each other CPU family (docs/design.md, "Behaving the same on every CPU"):
# sgan.device fakes the CPU flags and the precision timer (SGAN_CPU_PROFILE); computations stay real.
CPU_PROFILES ?= avx2 amx
test-profiles: setup
	set -e; for p in $(CPU_PROFILES); do echo "== pytest --cpu-profile $$p"; $(PY) -m pytest --cpu-profile $$p; done

# `sgan explore` end to end in a real headless browser: Debian's chromium (apt-get when missing) driven by
# Playwright (the `browser` extra; it launches the system chromium by path and downloads no browser).
SUDO ?= $(if $(filter 0,$(shell id -u)),,sudo)
test-browser: setup
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (apt-get)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	$(PY) -m pip install --quiet -e ".[test,browser]"
	SGAN_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_explore_browser.py

clean-demo:
	rm -rf data/shapes.lmdb runs/shapes out


# Every CUDA path (train fp32/TF32, bf16, fp16; resume; torchrun/nccl; generate, mix, project, video;
# metrics; imports against the CPU; auto choices) on the GPU, with a table: see docs/benchmarks.md.
# GPU_CHECK_ARGS="--device cpu" runs the CPU version.
.PHONY: gpu-check
gpu-check: setup
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)
