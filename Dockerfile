# syntax=docker/dockerfile:1
#
# The idgraph container image: a static binary on scratch, run as a
# non-root user, with every write in one volume at /data so that the root
# file system can be read-only. docs/deployment.md shows how to build and
# run it; `go test ./deploy/` checks this file (no container engine needed).

# The toolchain is go.mod's `go` version (the check enforces it). Pin the
# digest as well where the registry is reachable: golang:1.26.8-trixie@sha256:…
FROM golang:1.26.8-trixie AS build
WORKDIR /src
# A static binary: no C library in the final image.
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /out/idgraph ./cmd/idgraph
# /data, owned by the runtime user: a new named volume mounted there starts
# as a copy of it, so the user can write to it without a chown at start.
RUN mkdir -p /out/data/tmp && chmod -R 0700 /out/data

FROM scratch
# Webhook destinations and neo4j+s:// stores need the CA certificates.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/idgraph /idgraph
COPY --from=build --chown=65532:65532 /out/data /data
# The pepper, the erasure ledger and the embedded store all live in /data
# (the pepper beside the store, never in it); TMPDIR too, for the matching
# trainer's spill files. With a Neo4j store only the pepper, the ledger and
# the keyring of payload encryption (beside the pepper) are written here.
ENV IDGRAPH_ADDR=:8080 \
    IDGRAPH_STORE=/data/idgraph-data \
    IDGRAPH_PEPPER_FILE=/data/idgraph.pepper \
    TMPDIR=/data/tmp
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/idgraph", "healthcheck"]
ENTRYPOINT ["/idgraph"]
CMD ["serve"]
