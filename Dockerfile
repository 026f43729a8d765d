# Multi-stage build of the single pixstream binary.
#   docker build -t pixstream .
#   docker run -p 8080:8080 -p 8081:8081 -v pixstream-data:/data pixstream
FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pixstream

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 pixstream \
    && mkdir -p /data \
    && chown pixstream /data
COPY --from=build /src/target/release/pixstream /usr/local/bin/pixstream
USER pixstream
WORKDIR /data
# 8080 public (PSP pulls), 8081 internal (producer, admin), 8082 peer (Raft)
EXPOSE 8080 8081 8082
VOLUME ["/data"]
ENTRYPOINT ["pixstream"]
# The embedded single node, reachable from outside the container. For a cluster:
#   serve --config /etc/pixstream/cluster.toml --node-id N
CMD ["serve", "--data-dir", "/data", "--public-addr", "0.0.0.0:8080", "--internal-addr", "0.0.0.0:8081"]
