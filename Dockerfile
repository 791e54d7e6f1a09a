# One image for the coordinator and the agents (see docker-compose.yml).
FROM node:20-slim AS build
WORKDIR /app
# better-sqlite3 builds from source on install.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3 msgpackr-extract
COPY tsconfig.json ./
COPY agent ./agent
COPY coordinator ./coordinator
COPY shared ./shared
COPY bin ./bin
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY examples ./examples
COPY examples/docker/spec.yaml /etc/fedmon/spec.yaml
RUN chmod +x dist/bin/fedmon.js examples/docker/entrypoint.sh \
 && ln -s /app/dist/bin/fedmon.js /usr/local/bin/fedmon \
 && mkdir -p /var/lib/fedmon /roster /data
# 4001/4002: libp2p (coordinator/agents); 7600: the coordinator's HTTP API.
EXPOSE 4001 4002 7600
ENTRYPOINT ["/app/examples/docker/entrypoint.sh"]
CMD ["--help"]
