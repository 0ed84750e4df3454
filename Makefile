# The two commands of the README: `make lab` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888
# `make lab NOBROWSER=1` starts JupyterLab headless (print the URL, open no browser);
# LAB_ARGS passes further options to JupyterLab (e.g. LAB_ARGS=--IdentityProvider.token=...).
NOBROWSER ?=
LAB_ARGS  ?=
# JupyterLab refuses to run as root unless asked: containers, CI and lab machines often are root.
AS_ROOT   := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

# The second CPU path: torch's portable kernels (no AVX2/AVX-512 in ATen, MKL or oneDNN) and the
# C kernel built for the baseline ISA without FMA contraction. `make test` reruns these tests on it.
PORTABLE_ENV   := ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41 \
                  LABKIT_KERNEL_ISA=baseline
PORTABLE_TESTS := tests/test_neural_ciphers.py tests/test_neural_compiler.py tests/test_neural_fast.py \
                  tests/test_neural_kernel.py tests/test_defence.py tests/test_attacks.py \
                  tests/test_backdoor.py tests/test_backdoor_neural.py tests/test_exercises_relu.py \
                  tests/test_exercises_attacks.py tests/test_widgets_relu.py tests/test_widgets_attacks.py \
                  notebooks/05_relu_circuits.ipynb notebooks/06_cipher_networks.ipynb \
                  notebooks/06b_key_recovery.ipynb notebooks/07_secure_networks.ipynb notebooks/08_backdoors.ipynb \
                  notebooks/08b_backdoor_limits.ipynb notebooks/06c_aes256_network.ipynb tests/test_second_round.py \
                  notebooks/08c_backdoor_attacks_pq.ipynb

.PHONY: lab lab-student test test-portable unit notebooks bench execute clean student book browser release loadtest loadtest-hub

# torch 2.13.0: on Linux without an NVIDIA GPU its CPU build (2 GB, not PyPI's 5.7 GB CUDA build);
# `make lab TORCH=cuda` asks for CUDA, TORCH=cpu for the CPU build anywhere (deploy/install_torch.py).
TORCH ?= auto

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	TORCH=$(TORCH) $(BIN)/python deploy/install_torch.py
	$(BIN)/python -m pip install --quiet -e '.[dev,course]'
	$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax lark  # as postBuild (step 4): 12 s off each server start
	touch $(STAMP)

# `make lab` opens the contents (notebook 00) with the file browser at the repository's root, so
# notebooks/ (worked solutions) and student/ (`make student`: exercises open) are both a click away;
# `make lab-student` opens the student copy of notebook 00 (making the copies first if missing).
lab: $(STAMP)
	$(if $(filter command line,$(origin TORCH)),TORCH=$(TORCH) $(BIN)/python deploy/install_torch.py)
	@$(if $(AS_ROOT),echo "make lab: running as root: adding --allow-root for JupyterLab")
	$(BIN)/jupyter lab notebooks/00_start_here.ipynb --ServerApp.root_dir=. --port=$(PORT) $(AS_ROOT) \
	  $(if $(NOBROWSER),--no-browser --ServerApp.open_browser=False) $(LAB_ARGS)

lab-student: $(STAMP)
	test -f student/00_start_here.ipynb || $(BIN)/labkit-make-student
	@$(if $(AS_ROOT),echo "make lab: running as root: adding --allow-root for JupyterLab")
	$(BIN)/jupyter lab student/00_start_here.ipynb --ServerApp.root_dir=. --port=$(PORT) $(AS_ROOT) \
	  $(if $(NOBROWSER),--no-browser --ServerApp.open_browser=False) $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile
	$(MAKE) --no-print-directory test-portable

# The rounding-sensitive tests again on the second CPU path (part of `make test`).
test-portable: $(STAMP)
	$(PORTABLE_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile $(PORTABLE_TESTS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest notebooks

# Re-execute notebooks and keep only the outputs nbval compares (see README, Contributing).
execute: $(STAMP)
	$(BIN)/labkit-execute-notebooks $(NB)

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .node

# Student copies (solutions removed, checks kept) into student/; see labkit_tools/make_student.py.
student: $(STAMP)
	$(BIN)/labkit-make-student

# The nbgrader course (deploy/README.md): one assignment per unit in $(COURSE)/source, and with
# `nbgrader generate_assignment` the student releases in $(COURSE)/release (hidden tests kept back).
COURSE ?= build/course
release: $(STAMP)
	$(BIN)/labkit-nbgrader-course --course $(COURSE) $(NB)

# The load test of deploy/README.md: a real JupyterHub on loopback, N students running notebooks 02
# and 06b at once (installs configurable-http-proxy from npm into .node/ if missing); its report and
# the capacity table computed from it go to deploy/results/.
N ?= 20
# Every run is kept (deploy/results/loadtest-<time>.md); a failure names the request or cell that failed.
loadtest: $(STAMP)
	$(BIN)/python deploy/loadtest.py --students $(N)
	$(BIN)/python deploy/capacity.py

# The hub alone at class size: N students with stand-in servers (no kernels), logging in over 60 s, active 60 s each.
loadtest-hub: $(STAMP)
	$(BIN)/python deploy/loadtest.py --no-kernels --students $(N) --duration 60 --ramp 60

# The static, readable rendering: every notebook executed, rendered by Sphinx + MyST-NB with an index (offline), in two
# editions: _book/student (public: solutions removed, no instructor notes) and _book/instructor.
book: $(STAMP)
	$(BIN)/labkit-build-book --edition both

# Every unit run in JupyterLab in headless Chromium, the units with exercises as their student copies
# (installs chromium/playwright if missing); part of `make test`, this runs it alone. Screenshots land
# in artifacts/browser/.
browser: $(STAMP)
	$(BIN)/python -m pytest -p no:xdist tests/test_browser.py
