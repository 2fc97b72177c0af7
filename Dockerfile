# lifeplan — one image: the host binary, modules/ and migrations/.
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libuv1-dev node-llhttp libluajit-5.1-dev lua-cjson-dev \
      libpq-dev libhiredis-dev libcurl4-openssl-dev libsodium-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY host host
COPY spec spec
COPY bench bench
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$(nproc)" --target lifeplan

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libuv1 libluajit-5.1-2 libpq5 libhiredis0.14 libcurl4 libsodium23 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app --shell /usr/sbin/nologin lifeplan
WORKDIR /app
COPY --from=build /src/build/lifeplan /app/lifeplan
COPY modules /app/modules
COPY migrations /app/migrations
USER lifeplan
ENV LIFEPLAN_ENV=production HOST=0.0.0.0 PORT=8080 MODULES_DIR=/app/modules MIGRATIONS_DIR=/app/migrations
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# WORKERS defaults to the number of cores in the container.
CMD ["sh", "-c", "exec /app/lifeplan serve --workers ${WORKERS:-$(nproc)}"]
