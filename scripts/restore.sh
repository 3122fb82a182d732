#!/usr/bin/env bash
# Restores one Caliente database from a dump written by scripts/backup.sh. The database is
# dropped and created again from the dump (owner and access rules included), so tables added
# after the dump do not linger. Before dropping anything it checks that the file is a dump of
# that database and saves the current contents next to the other dumps.
#
# Usage: scripts/restore.sh [--yes] [--dir DIR] [--pg-dump CMD] [--pg-restore CMD] [--psql CMD]
#                           DATABASE FILE
#   --yes             do not ask for confirmation (for scripts)
#   --dir DIR         backup folder for the safety dump (default /opt/caliente/backups)
#   --pg-dump CMD     how pg_dump is run (default "docker exec caliente-postgres pg_dump --username=postgres")
#   --pg-restore CMD  how pg_restore is run; it reads the archive on stdin
#                     (default "docker exec -i caliente-postgres pg_restore --username=postgres")
#   --psql CMD        how psql is run; it reads SQL on stdin
#                     (default "docker exec -i caliente-postgres psql --username=postgres")
# Stop the backend that uses the database first (docker compose stop backend_prod), then start
# it again afterwards.
set -euo pipefail

backup_dir=${BACKUP_DIR:-/opt/caliente/backups}
pg_dump_command=${PG_DUMP_COMMAND:-docker exec caliente-postgres pg_dump --username=postgres}
pg_restore_command=${PG_RESTORE_COMMAND:-docker exec -i caliente-postgres pg_restore --username=postgres}
psql_command=${PSQL_COMMAND:-docker exec -i caliente-postgres psql --username=postgres}
confirmed=0
arguments=()

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case $1 in
    --yes) confirmed=1 ;;
    --dir) backup_dir=${2:?--dir needs a folder} && shift ;;
    --pg-dump) pg_dump_command=${2:?--pg-dump needs a command} && shift ;;
    --pg-restore) pg_restore_command=${2:?--pg-restore needs a command} && shift ;;
    --psql) psql_command=${2:?--psql needs a command} && shift ;;
    -h | --help) usage && exit 0 ;;
    -*) echo "unknown option $1" >&2 && usage >&2 && exit 2 ;;
    *) arguments+=("$1") ;;
  esac
  shift
done

if [ ${#arguments[@]} -ne 2 ]; then
  usage >&2
  exit 2
fi
database=${arguments[0]}
file=${arguments[1]}
read -ra pg_dump <<<"$pg_dump_command"
read -ra pg_restore <<<"$pg_restore_command"
read -ra psql <<<"$psql_command"

fail() {
  echo "restore: $*" >&2
  exit 1
}

run_sql() {
  "${psql[@]}" --dbname=postgres --no-psqlrc --quiet --tuples-only --no-align \
    -v ON_ERROR_STOP=1 -v database="$database"
}

[[ $database =~ ^[a-z_][a-z0-9_]*$ ]] || fail "invalid database name $database"
[ -s "$file" ] || fail "$file is missing or empty"

# The archive's table of contents names the database it was taken from.
contents=$("${pg_restore[@]}" --list --create <"$file") || fail "$file is not a pg_dump custom-format archive"
grep -Eq "^[0-9]+; [0-9]+ [0-9]+ DATABASE - $database " <<<"$contents" ||
  fail "$file is not a dump of $database (made with scripts/backup.sh, which uses --create)"

if [ "$confirmed" = 0 ]; then
  [ -t 0 ] || fail "refusing to replace $database without --yes when not run from a terminal"
  read -r -p "This replaces database $database with $file. Type the database name to go on: " answer
  [ "$answer" = "$database" ] || fail "not confirmed, nothing changed"
fi

umask 077
exists=$(run_sql <<<"SELECT 1 FROM pg_database WHERE datname = :'database'")
if [ "$exists" = 1 ]; then
  mkdir -p "$backup_dir/$database"
  safety=$backup_dir/$database/$database-before-restore-$(date +%Y%m%d-%H%M%S).dump
  "${pg_dump[@]}" --format=custom --create --dbname="$database" >"$safety" ||
    fail "saving the current $database to $safety failed; nothing was dropped"
  echo "restore: current $database saved to $safety"
  run_sql <<<'DROP DATABASE :"database" WITH (FORCE)' >/dev/null
fi

"${pg_restore[@]}" --create --exit-on-error --dbname=postgres <"$file" ||
  fail "pg_restore failed; the previous contents are in ${safety:-(none: the database did not exist)}"
echo "restore: $database restored from $file"
