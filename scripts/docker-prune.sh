#!/usr/bin/env bash
# Frees disk on the VPS: removes stopped containers, unused networks, dangling images and build
# cache older than a week. Volumes are never touched (certificates, deploy state and the
# database live there), and images that a container uses are kept. Meant to run weekly from
# cron (scripts/install-cron.sh).
#
# Usage: scripts/docker-prune.sh [--older-than DURATION] [--docker CMD]
#   --older-than DURATION  only prune what was created before this long ago (default 168h)
#   --docker CMD           how docker is run (default "docker")
set -euo pipefail

older_than=${PRUNE_OLDER_THAN:-168h}
docker_command=${DOCKER_COMMAND:-docker}

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case $1 in
    --older-than) older_than=${2:?--older-than needs a duration such as 168h} && shift ;;
    --docker) docker_command=${2:?--docker needs a command} && shift ;;
    -h | --help) usage && exit 0 ;;
    *) echo "unknown option $1" >&2 && usage >&2 && exit 2 ;;
  esac
  shift
done

if ! [[ $older_than =~ ^[0-9]+[smh]$ ]]; then
  echo "--older-than must be a duration such as 168h, got $older_than" >&2
  exit 2
fi
read -ra docker <<<"$docker_command"

echo "prune: disk before: $("${docker[@]}" system df --format '{{.Type}} {{.Size}}' | paste -sd, -)"
# No --volumes and no --all: named volumes stay, and tagged images (the last deploy's
# rollback target among them) stay until they are dangling.
"${docker[@]}" system prune --force --filter "until=$older_than"
echo "prune: disk after: $("${docker[@]}" system df --format '{{.Type}} {{.Size}}' | paste -sd, -)"
