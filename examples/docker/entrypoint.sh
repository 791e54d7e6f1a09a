#!/bin/sh
# Container entrypoint for `docker compose`: first start creates this service's identity key with
# `fedmon keygen` (kept in its own volume), publishes only the peer id to the shared /roster volume,
# renders the config from the roster, then runs the same command the e2e tests run:
#   fedmon coordinator --config /var/lib/fedmon/coordinator.yaml
#   fedmon agent --config /var/lib/fedmon/agent.yaml
set -eu
role="${1:-}"
state=/var/lib/fedmon
if [ "$role" = "coordinator" ] || [ "$role" = "agent" ]; then
  name="${FEDMON_NAME:-$role}"
  mkdir -p "$state" /roster
  if [ ! -f "$state/identity.key" ]; then
    fedmon keygen --out "$state/identity.key" --json > "$state/identity.json"
    echo "fedmon: created identity for $name: $(cat "$state/identity.json")"
  fi
  node /app/examples/docker/render-config.mjs "$role" "$name"
fi
exec fedmon "$@"
