# Quiver image: quiverd + quiverctl on Debian 12.
#   docker build -t quiver .
#   docker run -p 50051:50051 -v quiver-data:/data -e QUIVER_API_KEY=... quiver
# quiverd listens on 0.0.0.0 and so needs API keys or TLS (or
# QUIVER_ALLOW_INSECURE=1): deploy/docker-entrypoint.sh takes them from the
# environment or from files mounted under /etc/quiver (README, "Operations >
# API keys and TLS").
# The build stage runs the same install script and build script as the
# README and CI, so what CI tests is what the image ships.

FROM debian:bookworm AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN deploy/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# Portable images build for baseline x86-64 only if asked:
#   docker build --build-arg QUIVER_CMAKE_ARGS=-DQUIVER_X86_64_V3=OFF .
ARG QUIVER_CMAKE_ARGS=""
RUN BUILD_DIR=/src/build deploy/build.sh -DQUIVER_BUILD_TESTS=OFF ${QUIVER_CMAKE_ARGS}

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 librocksdb7.8 libopenblas0-openmp libgomp1 \
      libspdlog1.10 libfmt9 libabsl20220623 zlib1g liburing2 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data quiver \
 && mkdir -p /data && chown quiver:quiver /data
COPY --from=build /src/build/quiverd /src/build/quiverctl /usr/local/bin/
COPY deploy/docker-entrypoint.sh /usr/local/bin/quiver-entrypoint
COPY deploy/docker-healthcheck.sh /usr/local/bin/quiver-healthcheck
USER quiver
VOLUME /data
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["quiver-healthcheck"]
ENTRYPOINT ["quiver-entrypoint"]
