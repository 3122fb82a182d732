#!/usr/bin/env bash
# Creates one database and one login role per environment. The postgres image runs this from
# /docker-entrypoint-initdb.d on the first start of an empty data volume. Running it again
# later is safe because it only creates what is missing and resets the passwords.
#
# Each file in CALIENTE_ENV_FILES is a backend env file (.env.staging, .env.prod) and gives
# DB_NAME, DB_USER and DB_PASSWORD. Every database refuses connections from PUBLIC, so a role
# opens only the database it owns: the staging role cannot open the production database.
set -euo pipefail

env_files=${CALIENTE_ENV_FILES:-/run/caliente/env.staging /run/caliente/env.prod}
IDENTIFIER='^[a-z_][a-z0-9_]{0,62}$'

# Prints the value of KEY in an env file (KEY=value lines, one pair of quotes removed).
read_setting() {
  local file=$1 key=$2 line value='' found=0
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    if [[ $line == "$key="* ]]; then
      value=${line#*=}
      found=1
    fi
  done <"$file"
  if [ "$found" = 0 ]; then
    echo "init-databases: $key is missing in $file" >&2
    return 1
  fi
  if [ ${#value} -ge 2 ] && [[ $value == \"*\" || $value == \'*\' ]]; then
    value=${value:1:${#value}-2}
  fi
  printf '%s' "$value"
}

fail() {
  echo "init-databases: $*" >&2
  exit 1
}

run_sql() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" "$@"
}

# Creates the role and its database if missing, sets the password, closes the database to others.
create_environment() {
  local name=$1 user=$2 password=$3
  run_sql -v db_name="$name" -v db_user="$user" -v db_password="$password" <<'SQL'
SELECT format('CREATE ROLE %I', :'db_user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'db_user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
  :'db_user', :'db_password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db_name', :'db_user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db_name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db_name') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'db_name', :'db_user') \gexec
SQL
  echo "init-databases: database $name ready for role $user"
}

names=()
users=()
for file in $env_files; do
  [ -r "$file" ] || fail "cannot read $file: mount the env file there or set CALIENTE_ENV_FILES"
  name=$(read_setting "$file" DB_NAME)
  user=$(read_setting "$file" DB_USER)
  password=$(read_setting "$file" DB_PASSWORD)

  [[ $name =~ $IDENTIFIER ]] || fail "$file: DB_NAME '$name' must be lowercase letters, digits and _"
  [[ $user =~ $IDENTIFIER ]] || fail "$file: DB_USER '$user' must be lowercase letters, digits and _"
  [ -n "$password" ] || fail "$file: DB_PASSWORD is empty"
  [[ $password != replace-with-* ]] || fail "$file: DB_PASSWORD is still the example placeholder"
  for other in "${users[@]}"; do
    [ "$other" != "$user" ] || fail "$file: DB_USER $user is used by another environment; give each its own role"
  done
  for other in "${names[@]}"; do
    [ "$other" != "$name" ] || fail "$file: DB_NAME $name is used by another environment"
  done

  names+=("$name")
  users+=("$user")
  create_environment "$name" "$user" "$password"
done

# The maintenance database is for the superuser only.
run_sql -c 'REVOKE CONNECT ON DATABASE postgres FROM PUBLIC'
