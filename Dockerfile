# Quiver image: quiverd + quiverctl on Debian 12 (README, "Docker").
#   docker build -t quiver .
#   docker run -d -p 127.0.0.1:50051:50051 -v quiver-data:/data -e QUIVER_API_KEY=... quiver
# quiverd listens on 0.0.0.0 and so needs API keys or TLS (or
# QUIVER_ALLOW_INSECURE=1): deploy/docker-entrypoint.sh takes them from the
# environment or from files mounted under /etc/quiver (README, "Operations >
# API keys and TLS"). deploy/docker-test.sh builds, runs and checks this
# image in CI.
#
# Three stages: `build` compiles only quiverd and quiverctl; `debug` holds
# their debug information, split off so the image carries none of it
# (README, "Docker": build that stage and `docker cp` its files out); the
# last stage is the image, with the stripped binaries and only the shared
# libraries they load.

FROM debian:bookworm AS build
# What compiling quiverd and quiverctl needs; deploy/install-deps.sh has the
# rest (tests, fuzzing, benchmarks, data set) for development machines.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config binutils \
      protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev \
      librocksdb-dev libfaiss-dev libopenblas-openmp-dev \
      libspdlog-dev libfmt-dev libabsl-dev libcli11-dev nlohmann-json3-dev \
      liburing-dev libhnswlib-dev zlib1g-dev libssl-dev prometheus-cpp-dev libcpp-httplib-dev \
      libicu-dev libstemmer-dev libxxhash-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Extra CMake arguments, e.g. --build-arg QUIVER_CMAKE_ARGS=-DQUIVER_X86_64_V3=ON
# (everything compiled for AVX2 CPUs only; the default image runs on any
# x86-64 and picks its distance kernels at run time).
ARG QUIVER_CMAKE_ARGS=""
ARG JOBS=2
# (A clean build: the product libraries compiled in batches, QUIVER_UNITY_BUILD.)
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUIVER_BUILD_TESTS=OFF \
      -DQUIVER_UNITY_BUILD=ON \
      ${QUIVER_CMAKE_ARGS} \
 && cmake --build build -j"${JOBS}" --target quiverd quiverctl \
 && mkdir -p /out/bin /out/debug \
 && for b in quiverd quiverctl; do \
      objcopy --only-keep-debug build/$b /out/debug/$b.debug \
      && objcopy --strip-debug --strip-unneeded --add-gnu-debuglink=/out/debug/$b.debug \
           build/$b /out/bin/$b; \
    done

FROM scratch AS debug
COPY --from=build /out/debug/ /

FROM debian:bookworm-slim
# The shared libraries quiverd and quiverctl load (ldd; FAISS and RocksDB
# are linked statically), and their dependencies.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libabsl20220623 libgrpc++1.51 libgrpc29 libprotobuf32 libopenblas0-openmp libgomp1 \
      libspdlog1.10 libfmt9 libssl3 liburing2 zlib1g libbz2-1.0 liblz4-1 libsnappy1v5 \
      libzstd1 libre2-9 libc-ares2 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libcpp-httplib0.11 libbrotli1 libicu72 libstemmer0d \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 quiver \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home quiver \
 && mkdir -p /data && chown quiver:quiver /data
COPY --from=build /out/bin/quiverd /out/bin/quiverctl /usr/local/bin/
COPY deploy/docker-entrypoint.sh /usr/local/bin/quiver-entrypoint
COPY deploy/docker-healthcheck.sh /usr/local/bin/quiver-healthcheck
USER 10001:10001
VOLUME /data
EXPOSE 50051
# quiverd's grace for in-flight requests on SIGTERM (entrypoint:
# --shutdown-grace-seconds): well inside `docker stop`'s default 10 s, so a
# stop under load ends gracefully, not in SIGKILL. Index builds and
# compactions stop soon after SIGTERM (HNSW within a second; IVF kinds once
# their k-means training ends) and resume after a restart.
ENV QUIVER_SHUTDOWN_GRACE_SECONDS=5
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["quiver-healthcheck"]
ENTRYPOINT ["quiver-entrypoint"]
