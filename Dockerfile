# syntax=docker/dockerfile:1
# singleton-operator image: Node 24 and one bundled dist/main.js (no node_modules).
#   docker build -t singleton-operator:dev .
#   docker build --secret id=extra-ca,src=/path/to/proxy-ca.pem -t singleton-operator:dev .
# Stages: build (dev dependencies; scripts/bundle.ts bundles src/ into one
# self-contained dist/main.js), runtime (node + dist/ + package.json, numeric
# non-root user; no node_modules: the bundle carries what the operator uses).
# Without Docker (podman, a local stand-in for the base image): scripts/image.ts.

# The bundle is plain JavaScript, so the build stage runs on the builder's own
# platform and only the runtime stage is per target platform (no emulated npm ci).
FROM --platform=$BUILDPLATFORM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Optional input: the secret `extra-ca`, a PEM file of extra certificate
# authorities that npm should trust (a TLS-intercepting proxy between the build
# and the registry). It is added to Node's built-in roots for this one command
# and never stored in a layer. Without it the mount is empty and nothing changes.
# --ignore-scripts: the `node` devDependency would download a second Node.js; the image has one.
RUN --mount=type=secret,id=extra-ca \
    if [ -s /run/secrets/extra-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra-ca; fi; \
    npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/bundle.ts ./scripts/bundle.ts
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS runtime
# glibc malloc, tuned for a long-running process with bursts (bench/ and the
# e2e test run the replicas with this environment too):
#  - MALLOC_MMAP_THRESHOLD_: blocks of 32 KiB or more get their own mapping,
#    returned to the kernel when freed. Without it glibc raises the threshold
#    after the first large free, and V8's parser and compiler zones (17 MiB
#    while the bundle is compiled at start-up) and response buffers stay in
#    the heap's middle for good: an idle replica 103 → 87 MiB RSS.
#  - MALLOC_ARENA_MAX: V8's GC and compiler threads each got an arena of their
#    own (up to 8 per core), each keeping what it freed.
# Leader with 10,000 SingletonJobs after changing every spec: 183 → 158 MiB.
ENV NODE_ENV=production MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=32768
WORKDIR /app
# package.json carries "type": "module", which makes dist/*.js ES modules.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/dist ./dist
# A numeric user, so that Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 8080
# Exec form: node is PID 1 and receives SIGTERM itself; the operator handles
# SIGTERM/SIGINT (stop reconciling, release the Lease, exit) and starts no
# child processes, so there are no zombies to reap and no init is needed.
#
# Memory (bench/ and the e2e test run the replicas with exactly these flags):
# a young generation of at most 3 × 2 MiB instead of V8's default of up to
# 3 × 16 MiB; the old generation grows by 30 % over what survived the last
# full GC instead of V8's up-to-4×, which bounds the peak of a burst (a leader
# writing 10,000 statuses reached ~400 MiB without it, ~160 MiB now) for
# ~15-25 % more CPU during the burst. --expose-gc lets the operator give the
# heap back once a burst is over (src/runtime/heap-compactor.ts: a last-resort
# GC when the process is quiet; bench: 157 → 127 MiB 30 s after that burst).
# No --enable-source-maps by default: the bundle's map (dist/main.js.map) is
# there for `node --enable-source-maps` when debugging. The old generation's
# limit is sized by Node from the container's memory limit.
ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=30", "--expose-gc", "dist/main.js"]
