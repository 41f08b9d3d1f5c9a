# syntax=docker/dockerfile:1
# The Coalmine service image: one image, one role per container (`coalmine api|store|worker|
# migrate|create-topics`). See docker-compose.yml.

# ---- build: the project as a wheel (no dev/test extras) ----------------------------------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheel is made of (pyproject's package list); README.md once it exists.
COPY pyproject.toml README.md* ./
COPY coalmine ./coalmine
COPY ingest_api ./ingest_api
COPY processors ./processors
COPY domain ./domain
COPY runtime ./runtime
COPY schemas ./schemas
COPY queries ./queries
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Every dependency ships manylinux x86_64 wheels for CPython 3.11: no compiler needed.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install /wheels/coalmine-*.whl
# Non-root, with a writable home as the working directory: COALMINE_DATA_DIR defaults to
# ./coalmine-data, where the Faust worker keeps its small data directory (processors/).
RUN groupadd --system --gid 10001 coalmine \
    && useradd --system --uid 10001 --gid coalmine --create-home --home-dir /home/coalmine \
       --shell /usr/sbin/nologin coalmine
USER coalmine:coalmine
WORKDIR /home/coalmine
ENTRYPOINT ["coalmine"]
CMD ["--help"]
