# syntax=docker/dockerfile:1
# singleton-operator image: compiled JavaScript and production dependencies only.
#   docker build -t singleton-operator:dev .
# Stages: build (dev dependencies, tsc → dist/), deps (production node_modules),
# runtime (node + dist + production node_modules, numeric non-root user).

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` devDependency would download a second Node.js; the image has one.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# package.json carries "type": "module", which makes dist/*.js ES modules.
COPY --from=deps /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# A numeric user, so that Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 8080
# Exec form: node is PID 1 and receives SIGTERM itself; the operator handles
# SIGTERM/SIGINT (stop reconciling, release the Lease, exit) and starts no
# child processes, so there are no zombies to reap and no init is needed.
#
# Memory (bench/ measures the replicas with exactly these flags): a young
# generation of at most 3 × 2 MiB instead of V8's default of up to 3 × 16 MiB,
# and no --enable-source-maps (it keeps every dependency's source map, ~10 MiB;
# dist/ is type-stripped TypeScript, so its line numbers are close to src/).
# The old generation is sized by Node from the container's memory limit.
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/main.js"]
