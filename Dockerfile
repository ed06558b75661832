# syntax=docker/dockerfile:1
# reconciler in a small image. Build and run (README, "Docker"):
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" -t activecampaign-reconciler .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -e AC_API_URL -e AC_API_TOKEN \
#     activecampaign-reconciler plan
#
# The base is pinned by version tag AND digest (python 3.12.8, Debian bookworm, slim); bump both
# together (Renovate/Dependabot can do it). The runtime dependencies are pinned by constraints.txt.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm@sha256:2199a62885a12290dc9c5be3ca0681d367576ab7bf037da120e564723292a2f0

# ---- build: a wheel of this repository (no compilers needed, everything is pure Python or wheels)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY reconciler ./reconciler
# what the links in reconciler/templates (the files `reconciler init` copies) point at
COPY schemas/orders.yaml ./schemas/
COPY examples/github ./examples/github
COPY examples/gitlab/.gitlab-ci.yml ./examples/gitlab/
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime: the wheel and its pinned dependencies, reconciler as the entrypoint
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="activecampaign-reconciler" \
      org.opencontainers.image.description="Schema-as-code for ActiveCampaign Custom Objects: plan and apply YAML schemas." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/OWNER/reconciler" \
      org.opencontainers.image.base.name="docker.io/library/python:3.12.8-slim-bookworm"
# HOME is writable by any uid (sticky, like /tmp): the image works under `--user "$(id -u):$(id -g)"`
# or a Kubernetes runAsUser, with no user baked in for it; files written to the mounted /work then
# belong to the host user.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/home/reconciler
COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install --constraint /tmp/constraints.txt /wheels/*.whl && rm -rf /wheels /tmp/constraints.txt \
    && install -d -m 1777 /home/reconciler /work
# The default user when no --user is given: not root, and no name needed (uid/gid only).
USER 10001:10001
# Mount the GitOps repository here (schemas/, reconciler.yaml, json-schema/).
WORKDIR /work
# Exec form: reconciler is PID 1 and gets `docker stop`'s SIGTERM itself. It installs its own handler
# for it (PID 1 has no default one; tests/test_cli_signals.py sends a real SIGTERM), so an apply
# stops as on Ctrl-C: requests in flight finish, then the report. It starts no long-lived children,
# so there is nothing to reap; `docker run --init` adds tini for those who want one anyway.
STOPSIGNAL SIGTERM
ENTRYPOINT ["reconciler"]
CMD ["--help"]
