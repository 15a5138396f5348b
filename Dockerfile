# realstat container image.
#
#   docker build -t realstat .
#   docker run --rm -p 8080:8080 -p 9090:9090 realstat            # the embedded demo
#   docker run --rm -e REALSTAT_KAFKA_BROKERS=kafka:9092 \
#     -e REALSTAT_KEYS_FILE=/etc/realstat/keys.toml -v "$PWD/keys.toml:/etc/realstat/keys.toml:ro" \
#     -v realstat-data:/var/lib/realstat realstat
#
# Two stages: a Rust toolchain image that builds the stripped `dist` binary (fat LTO; librdkafka
# is compiled from source by rdkafka-sys, with zstd vendored and zlib, OpenSSL and Cyrus SASL from
# the system), and a slim Debian runtime that holds the binary, the shared libraries it links
# and CA certificates, run as an unprivileged user. The image speaks SASL/GSSAPI (Kerberos) to
# Kafka (feature "kerberos"), as well as PLAIN and SCRAM over TLS, and reads zstd-compressed
# topics (feature "zstd"; gzip, snappy and lz4 are always there).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

############################################################ builder
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder

# What rdkafka-sys needs to build librdkafka (features "libz", "ssl", "zstd", "gssapi"): a C
# toolchain and make for librdkafka's own ./configure && make, pkg-config to find the system
# libraries, and the OpenSSL, zlib and Cyrus SASL headers. No cmake, no python, no perl.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential \
      pkg-config \
      libssl-dev \
      zlib1g-dev \
      libsasl2-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependency layer: build every dependency against placeholder sources, so that a change to
# src/ only rebuilds the realstat crate. Every target Cargo.toml declares must exist for the
# manifest to load, hence the placeholder bench as well.
COPY Cargo.toml Cargo.lock ./
# actix-http, patched ([patch.crates-io] in Cargo.toml): a dependency like the others.
COPY vendor ./vendor
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && echo '' > src/lib.rs \
 && echo 'fn main() {}' > benches/core.rs \
 && cargo build --profile dist --locked --features kerberos,zstd \
 && rm -rf src benches \
      target/dist/realstat target/dist/realstat.d \
      target/dist/deps/realstat-* target/dist/deps/librealstat-* \
      target/dist/.fingerprint/realstat-*

# The real sources. Their mtimes come from the build context and may be older than the
# placeholder build: the fingerprints removed above make cargo rebuild the crate regardless.
COPY src ./src
COPY benches ./benches
# Compiled into the binary (include_str! in src/admin.rs: GET /openapi.yaml on the admin port).
COPY docs/openapi.yaml ./docs/openapi.yaml
# Shown by realstat_build_info{git=...}: docker build --build-arg REALSTAT_GIT_HASH=$(git rev-parse --short HEAD) .
ARG REALSTAT_GIT_HASH=unknown
ENV REALSTAT_GIT_HASH=${REALSTAT_GIT_HASH}
RUN cargo build --profile dist --locked --features kerberos,zstd --bin realstat \
 && install -m 0755 target/dist/realstat /usr/local/bin/realstat \
 && /usr/local/bin/realstat --version

############################################################ runtime
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# Shared libraries the binary links besides libc/libgcc (checked with ldd): libssl.so.3 and
# libcrypto.so.3 (libssl3), libz.so.1 (zlib1g), libsasl2.so.2 (libsasl2-2) with its GSSAPI
# mechanism (libsasl2-modules-gssapi-mit, which brings the MIT Kerberos libraries; mount your
# krb5.conf and keytab and set sasl.kerberos.* through REALSTAT_KAFKA_PROPERTIES). CA
# certificates for Kafka over TLS. Time-zone data is compiled into the binary (jiff's bundled
# tzdb), so no tzdata.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libssl3 \
      zlib1g \
      libsasl2-2 \
      libsasl2-modules-gssapi-mit \
 && rm -rf /var/lib/apt/lists/*

# Unprivileged user with a fixed uid/gid (10001), so Kubernetes' runAsNonRoot can check it and
# volumes can be prepared for it. /var/lib/realstat is the snapshot directory (mount a volume
# there to keep snapshots across container restarts); /etc/realstat holds the config and keys.
RUN groupadd --system --gid 10001 realstat \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/realstat --no-create-home \
      --shell /usr/sbin/nologin realstat \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/realstat \
 && install -d -o root -g root -m 0755 /etc/realstat

COPY --from=builder /usr/local/bin/realstat /usr/local/bin/realstat
COPY deploy/realstat.toml /etc/realstat/realstat.toml.example

ENV REALSTAT_SNAPSHOT_DIR=/var/lib/realstat
WORKDIR /var/lib/realstat
USER 10001:10001

# 8080: the realstatistic API (behind the balancer). 9090: /metrics, /health/live, /health/ready.
EXPOSE 8080 9090

# Liveness of the process, through the admin listener (its port taken from REALSTAT_ADMIN_LISTEN,
# default 9090). The image has no curl: bash's /dev/tcp sends the request and the status line
# must say 200. (Kubernetes ignores HEALTHCHECK and uses the probes in
# deploy/kubernetes/base/deployment.yaml.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "a=${REALSTAT_ADMIN_LISTEN:-0.0.0.0:9090}; exec 3<>/dev/tcp/127.0.0.1/${a##*:} && printf 'GET /health/live HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3 && timeout 3 head -n1 <&3 | grep -q ' 200 '"]

# SIGTERM (docker stop): stop accepting, finish in-flight requests, write a final snapshot, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["realstat"]
CMD ["serve"]
