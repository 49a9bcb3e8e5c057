# Sourced by test.sh and bench.sh: installs the Debian packages that provide the given commands
# when they are missing, then puts sbin on PATH (dockerd and nginx live there).
# Usage: require_commands command=package …  (an absolute path instead of a command: a file the
# package provides, for packages without a command such as nginx modules)
require_commands() {
  local missing=() pair cmd
  for pair in "$@"; do
    cmd=${pair%%=*}
    if [[ $cmd == /* ]]; then
      [ -e "$cmd" ] || missing+=("${pair#*=}")
    else
      PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${pair#*=}")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(printf '%s\n' "${missing[@]}" | sort -u)
  fi
  export PATH="$PATH:/usr/sbin:/sbin"
}
