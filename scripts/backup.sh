#!/usr/bin/env bash
# Dumps each Caliente database with pg_dump (custom format, compressed) into
# <dir>/<database>/<database>-YYYYmmdd-HHMMSS.dump, then deletes dumps older than the
# retention period. Meant to run daily from cron (scripts/install-cron.sh).
#
# Usage: scripts/backup.sh [--dir DIR] [--keep-days N] [--databases "NAME ..."] [--pg-dump CMD]
#   --dir DIR         backup folder (default /opt/caliente/backups)
#   --keep-days N     delete dumps older than N days (default 14); the newest dump of each
#                     database is always kept
#   --databases LIST  databases to dump (default "caliente_staging_db caliente_prod_db")
#   --pg-dump CMD     how pg_dump is run, split on spaces; it receives the dump options and
#                     writes the archive to stdout
#                     (default "docker exec caliente-postgres pg_dump --username=postgres")
set -euo pipefail

backup_dir=${BACKUP_DIR:-/opt/caliente/backups}
keep_days=${BACKUP_KEEP_DAYS:-14}
databases=${BACKUP_DATABASES:-caliente_staging_db caliente_prod_db}
pg_dump_command=${PG_DUMP_COMMAND:-docker exec caliente-postgres pg_dump --username=postgres}

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case $1 in
    --dir) backup_dir=${2:?--dir needs a folder} && shift ;;
    --keep-days) keep_days=${2:?--keep-days needs a number} && shift ;;
    --databases) databases=${2:?--databases needs names} && shift ;;
    --pg-dump) pg_dump_command=${2:?--pg-dump needs a command} && shift ;;
    -h | --help) usage && exit 0 ;;
    *) echo "unknown option $1" >&2 && usage >&2 && exit 2 ;;
  esac
  shift
done

if ! [[ $keep_days =~ ^[1-9][0-9]*$ ]]; then
  echo "--keep-days must be a whole number of days, at least 1; got $keep_days" >&2
  exit 2
fi
read -ra pg_dump <<<"$pg_dump_command"
read -ra database_list <<<"$databases"

# Dumps hold every row of the application: readable by root only.
umask 077
stamp=$(date +%Y%m%d-%H%M%S)

# Writes one dump. A failed or empty dump leaves no file behind, so rotation never counts it.
dump_database() {
  local database=$1 folder=$backup_dir/$1
  local file=$folder/$database-$stamp.dump
  mkdir -p "$folder"
  if ! "${pg_dump[@]}" --format=custom --create --dbname="$database" >"$file.partial"; then
    rm -f "$file.partial"
    echo "backup: pg_dump of $database failed; nothing was rotated" >&2
    return 1
  fi
  if [ ! -s "$file.partial" ]; then
    rm -f "$file.partial"
    echo "backup: pg_dump of $database wrote nothing; nothing was rotated" >&2
    return 1
  fi
  mv "$file.partial" "$file"
  echo "backup: $database -> $file ($(stat -c %s "$file") bytes)"
}

# Deletes dumps older than keep_days, except the newest of the database.
rotate_database() {
  local folder=$backup_dir/$1 newest old
  newest=$(find "$folder" -maxdepth 1 -name "$1-*.dump" -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
  while IFS= read -r old; do
    [ "$old" = "$newest" ] && continue
    rm -f -- "$old"
    echo "backup: removed $old (older than $keep_days days)"
  done < <(find "$folder" -maxdepth 1 -name "$1-*.dump" -mmin +$((keep_days * 24 * 60)))
}

failed=0
for database in "${database_list[@]}"; do
  dump_database "$database" || failed=1
done
# Old dumps go only after every new dump succeeded: a broken backup never eats the good ones.
if [ "$failed" = 1 ]; then
  exit 1
fi
for database in "${database_list[@]}"; do
  rotate_database "$database"
done
