# syntax=docker/dockerfile:1
# reconciler in a small image: `docker run --rm -v "$PWD:/work" -e AC_API_URL -e AC_API_TOKEN reconciler plan`
#
# The base is pinned by version tag AND digest (python 3.12.8, Debian bookworm, slim); bump both
# together (Renovate/Dependabot can do it).
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm@sha256:2199a62885a12290dc9c5be3ca0681d367576ab7bf037da120e564723292a2f0

# ---- build: a wheel of this repository (no compilers needed, everything is pure Python or wheels)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime: the wheel and its dependencies, a non-root user, reconciler as the entrypoint
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 10001 reconciler \
    && useradd --system --uid 10001 --gid reconciler --home-dir /home/reconciler --create-home \
       --shell /usr/sbin/nologin reconciler
USER 10001:10001
# Mount the GitOps repository here (schemas/, reconciler.yaml, json-schema/).
WORKDIR /work
# Exec form: reconciler is PID 1 and gets `docker stop`'s SIGTERM itself. It installs a handler for
# it (PID 1 has no default one), so an apply stops as on Ctrl-C: requests in flight finish, then the report.
STOPSIGNAL SIGTERM
ENTRYPOINT ["reconciler"]
CMD ["--help"]
