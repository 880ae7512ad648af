# syntax=docker/dockerfile:1
#
# One image, both binaries: /usr/local/bin/hermes-operator and
# /usr/local/bin/hermes-server. The Deployments pick one with `command`.
#
#   docker build -t hermes:dev .
#
# The build stage caches the cargo registry and target directory between
# builds (BuildKit cache mounts); the runtime stage is distroless, runs as
# the nonroot user (65532) and holds nothing but the binaries and CA roots.

ARG RUST_VERSION=1.94

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p hermes-operator -p hermes-server \
 && mkdir -p /out \
 && cp target/release/hermes-operator target/release/hermes-server /out/

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/squaremcp/hermes" \
      org.opencontainers.image.description="Hermes: multi-tenant messaging for AI agents (operator and server)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/hermes-operator /out/hermes-server /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080 8081
ENTRYPOINT []
CMD ["/usr/local/bin/hermes-server", "serve"]
