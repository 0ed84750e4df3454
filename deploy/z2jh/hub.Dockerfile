# The hub's image for Zero to JupyterHub: the chart's own hub image (chart 4.4.0, JupyterHub 5.5.0)
# plus the lab in a virtual environment of its own, /srv/lab/.venv, which runs the challenge service
# the hub starts (config.yaml: hub.extraConfig.labChallenges, LAB_CHALLENGES_PYTHON). The hub's own
# packages stay exactly as the chart tested them.
#
# Unlike the students' image this one keeps the instructor notebooks: the service reads the quiz
# answer key from them, and no student runs code in the hub's pod. Push it to a registry only the
# cluster pulls from. From the repository's root:
#   docker build -f deploy/z2jh/hub.Dockerfile -t registry.example.org/your-course/deep-neural-crypto-lab-hub:2026-11 .
FROM quay.io/jupyterhub/k8s-hub:4.4.0

USER root
# a C compiler for the networks' fused kernel (labkit/neural/kernel.py): built below for this CPU,
# rebuilt once on first use (about 2 CPU-seconds) if the hub's node has another CPU model
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /srv/lab/
COPY labkit /srv/lab/labkit
COPY notebooks /srv/lab/notebooks
COPY deploy /srv/lab/deploy
RUN python -m venv /srv/lab/.venv \
 && /srv/lab/.venv/bin/pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && /srv/lab/.venv/bin/pip install --no-cache-dir "/srv/lab[course]" \
 && XDG_CACHE_HOME=/tmp/build /srv/lab/.venv/bin/python -c "import torch; from labkit.neural import kernel; \
assert kernel.available(torch.float64) and kernel.available(torch.float32)" \
 && mkdir -p /srv/lab/.kernel-cache && cp /tmp/build/labkit/relu_kernel_*.so /srv/lab/.kernel-cache/ \
 && rm -rf /tmp/build
USER jovyan
