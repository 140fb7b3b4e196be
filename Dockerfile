# syntax=docker/dockerfile:1
# pullgate container image: compiled JavaScript (no TypeScript stripper at runtime), Node 24.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# Scripts are skipped: the node@24 devDependency is not needed, the base image is Node 24.
RUN npm ci --ignore-scripts
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PULLGATE_CONFIG=/etc/pullgate/pullgate.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY trust ./trust
COPY --from=build /app/dist ./dist
# Mount your configuration at /etc/pullgate/pullgate.yaml (listen on 0.0.0.0 inside a container).
COPY deploy/container/pullgate.yaml /etc/pullgate/pullgate.yaml
# The image's `node` user, by number: Kubernetes can then verify runAsNonRoot without a runAsUser.
USER 1000:1000
EXPOSE 5050 5051
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:5051/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# A small young generation keeps the resident set low while blobs stream (measured: bench/RESULTS.md).
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/bin/pullgate.js"]
CMD ["serve"]
