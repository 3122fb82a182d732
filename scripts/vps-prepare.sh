#!/usr/bin/env bash
# Prepares an Ubuntu VPS for the Caliente stack: Docker with Compose v2, a firewall that lets in
# only SSH, HTTP and HTTPS, a 2 GB swap file and /opt/caliente. Safe to run again: every step
# looks at the current state first and changes only what differs.
#
# Usage: sudo scripts/vps-prepare.sh [--dry-run] [--ssh-port N] [--swap-size SIZE]
#   --dry-run        print what would change, change nothing (no root needed)
#   --ssh-port N     SSH port to keep open (default 22)
#   --swap-size SIZE swap file size for fallocate, such as 2G (default 2G)
set -euo pipefail

# Every file path below starts with VPS_ROOT, which only the tests set (to a scratch folder).
root=${VPS_ROOT:-}
dry_run=0
ssh_port=22
swap_size=2G
swap_file=$root/swapfile
install_dir=$root/opt/caliente
read -ra docker_packages <<<"${DOCKER_PACKAGES:-docker.io docker-compose-v2}"
packages=("${docker_packages[@]}" ufw cron)
changes=0

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1 ;;
    --ssh-port)
      ssh_port=${2:?--ssh-port needs a port number}
      shift
      ;;
    --swap-size)
      swap_size=${2:?--swap-size needs a size such as 2G}
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "unknown option $1" >&2
      usage >&2
      exit 2
      ;;
  esac
  shift
done

[[ $ssh_port =~ ^[0-9]+$ ]] || {
  echo "--ssh-port must be a number, got $ssh_port" >&2
  exit 2
}

if [ "$dry_run" = 0 ] && [ "${EUID}" -ne 0 ]; then
  echo "run as root (sudo), or with --dry-run to see what would change" >&2
  exit 1
fi

# Runs a change, or in dry-run mode prints it. $1 describes the change.
change() {
  local what=$1
  shift
  changes=$((changes + 1))
  if [ "$dry_run" = 1 ]; then
    echo "would: $what  [$*]"
    return 0
  fi
  echo "change: $what"
  "$@"
}

ok() {
  echo "ok: $*"
}

append_line() {
  printf '%s\n' "$2" >>"$1"
}

check_os() {
  local release=$root/etc/os-release
  if [ -r "$release" ] && grep -q '^ID=ubuntu' "$release"; then
    ok "Ubuntu ($(grep '^VERSION_ID=' "$release" | cut -d= -f2 | tr -d '"'))"
  else
    echo "warning: written for Ubuntu; $release does not say Ubuntu" >&2
  fi
}

package_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
  local missing=() package
  for package in "${packages[@]}"; do
    package_installed "$package" || missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    ok "packages installed: ${packages[*]}"
    return 0
  fi
  change "apt-get update" apt-get update -qq
  change "install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

enable_docker() {
  if systemctl is-enabled --quiet docker 2>/dev/null && systemctl is-active --quiet docker 2>/dev/null; then
    ok "docker service enabled and running"
    return 0
  fi
  change "enable and start the docker service" systemctl enable --now docker
}

# Rules as `ufw allow ...` lines; ufw lists them even while the firewall is inactive.
firewall_rules() {
  ufw show added 2>/dev/null | grep '^ufw ' || true
}

configure_firewall() {
  local rules defaults=$root/etc/default/ufw port
  rules=$(firewall_rules)
  if grep -q '^DEFAULT_INPUT_POLICY="DROP"' "$defaults" 2>/dev/null &&
    grep -q '^DEFAULT_OUTPUT_POLICY="ACCEPT"' "$defaults" 2>/dev/null; then
    ok "firewall denies incoming and allows outgoing by default"
  else
    change "firewall: deny incoming by default" ufw default deny incoming
    change "firewall: allow outgoing by default" ufw default allow outgoing
  fi

  # SSH first, so enabling the firewall never cuts the running session.
  for port in "$ssh_port" 80 443; do
    if grep -qx "ufw allow ${port}/tcp" <<<"$rules"; then
      ok "firewall allows ${port}/tcp"
    else
      change "firewall: allow ${port}/tcp" ufw allow "${port}/tcp"
    fi
  done

  if ufw status 2>/dev/null | grep -q '^Status: active'; then
    ok "firewall active"
  else
    change "firewall: enable" ufw --force enable
  fi
  report_other_rules "$rules"
}

# Rules someone else added are reported, not removed: they may be deliberate.
report_other_rules() {
  local rule
  while IFS= read -r rule; do
    echo "warning: the firewall has another rule, check it: $rule" >&2
  done < <(grep -Evx "ufw allow (${ssh_port}|80|443)/tcp" <<<"$1" | grep . || true)
}

swap_active() {
  swapon --show=NAME --noheadings 2>/dev/null | grep -q .
}

configure_swap() {
  if swap_active; then
    ok "swap active: $(swapon --show=NAME,SIZE --noheadings | tr -s ' ' | paste -sd, -)"
  else
    if [ ! -e "$swap_file" ]; then
      change "create ${swap_size} swap file $swap_file" fallocate -l "$swap_size" "$swap_file"
      change "restrict $swap_file to root" chmod 600 "$swap_file"
      change "format $swap_file as swap" mkswap "$swap_file"
    fi
    change "turn on swap $swap_file" swapon "$swap_file"
  fi

  if grep -q "^/swapfile " "$root/etc/fstab" 2>/dev/null; then
    ok "/swapfile listed in /etc/fstab"
  elif ! swap_active || [ -e "$swap_file" ]; then
    change "list /swapfile in /etc/fstab" append_line "$root/etc/fstab" '/swapfile none swap sw 0 0'
  fi

  local sysctl_file=$root/etc/sysctl.d/99-caliente-swap.conf
  if [ -f "$sysctl_file" ]; then
    ok "swappiness set in $sysctl_file"
  else
    # Swap is the safety margin of a 2 GB host, not working memory.
    change "set vm.swappiness=10" append_line "$sysctl_file" 'vm.swappiness=10'
    change "apply vm.swappiness now" sysctl -q -w vm.swappiness=10
  fi
}

create_directories() {
  local dir
  for dir in "$install_dir" "$install_dir/backups"; do
    if [ -d "$dir" ]; then
      ok "$dir exists"
    else
      change "create $dir" mkdir -p "$dir"
    fi
  done
  if [ "$(stat -c %a "$install_dir/backups" 2>/dev/null)" != 700 ]; then
    change "restrict $install_dir/backups to root" chmod 700 "$install_dir/backups"
  fi
}

print_docker_gid() {
  local gid
  gid=$(getent group docker 2>/dev/null | cut -d: -f3 || true)
  if [ -n "$gid" ]; then
    echo "DOCKER_GID=$gid  (put this line in $install_dir/.env)"
  else
    echo "DOCKER_GID is known once Docker is installed: getent group docker | cut -d: -f3"
  fi
}

check_os
install_packages
enable_docker
configure_firewall
configure_swap
create_directories
print_docker_gid
if [ "$dry_run" = 1 ]; then
  echo "dry run: $changes change(s) would be made"
else
  echo "done: $changes change(s) made"
fi
