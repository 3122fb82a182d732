#!/usr/bin/env bash
# Installs the Caliente maintenance jobs as one cron file: the daily database backup and the
# weekly Docker prune, each logging to /var/log. Running it again rewrites the same file.
#
# Usage: sudo scripts/install-cron.sh [--cron-file FILE] [--keep-days N] [--log-dir DIR]
#   --cron-file FILE  cron file to write (default /etc/cron.d/caliente)
#   --keep-days N     days of backups to keep (default 14)
#   --log-dir DIR     folder of the job logs (default /var/log)
# The jobs call backup.sh and docker-prune.sh from the folder this script is in.
set -euo pipefail

cron_file=/etc/cron.d/caliente
keep_days=14
log_dir=/var/log
scripts_dir=$(cd "$(dirname "$0")" && pwd)
# Backup daily at 03:15, prune on Sundays at 04:30 (server time).
BACKUP_SCHEDULE='15 3 * * *'
PRUNE_SCHEDULE='30 4 * * 0'

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case $1 in
    --cron-file) cron_file=${2:?--cron-file needs a path} && shift ;;
    --keep-days) keep_days=${2:?--keep-days needs a number} && shift ;;
    --log-dir) log_dir=${2:?--log-dir needs a folder} && shift ;;
    -h | --help) usage && exit 0 ;;
    *) echo "unknown option $1" >&2 && usage >&2 && exit 2 ;;
  esac
  shift
done

if ! [[ $keep_days =~ ^[1-9][0-9]*$ ]]; then
  echo "--keep-days must be a whole number of days, at least 1; got $keep_days" >&2
  exit 2
fi
for script in backup.sh docker-prune.sh; do
  [ -x "$scripts_dir/$script" ] || {
    echo "$scripts_dir/$script is missing or not executable" >&2
    exit 1
  }
done
# cron splits its lines on spaces and gives % a meaning of its own.
if [[ $scripts_dir$log_dir == *[[:space:]%]* ]]; then
  echo "the scripts and log folders must not contain spaces or %" >&2
  exit 1
fi

content="# Caliente maintenance jobs, written by $scripts_dir/install-cron.sh; edits are overwritten.
SHELL=/bin/bash
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$BACKUP_SCHEDULE root $scripts_dir/backup.sh --keep-days $keep_days >>$log_dir/caliente-backup.log 2>&1
$PRUNE_SCHEDULE root $scripts_dir/docker-prune.sh >>$log_dir/caliente-prune.log 2>&1"

if [ -f "$cron_file" ] && [ "$(cat "$cron_file")" = "$content" ]; then
  echo "cron: $cron_file is up to date"
  exit 0
fi
# Write then rename: cron never reads a half-written file. cron ignores group- or
# world-writable files in /etc/cron.d.
temporary=$(mktemp "$(dirname "$cron_file")/.caliente-cron.XXXXXX")
printf '%s\n' "$content" >"$temporary"
chmod 644 "$temporary"
mv "$temporary" "$cron_file"
echo "cron: wrote $cron_file"
