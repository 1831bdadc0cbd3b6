#!/usr/bin/env bash
# Host side of `make user`, `make users`, `make user-delete` and `make admin-password`: runs
# gateway-users (see deploy/gateway/gateway-users) in the running gateway container, so a change
# takes effect at once, or, while the stack is down, in a one-off gateway container on the users
# volume.
#   users.sh list | users.sh set NAME ROLE | users.sh delete NAME
#   users.sh admin-password
# For `set`, the password comes from $PASSWORD, else a prompt on a terminal, else stdin.
# Compose settings come from the usual places (.env, COMPOSE_PROJECT_NAME, COMPOSE_ENV_FILES).
set -euo pipefail
cd "$(dirname "$0")/../.."

running=$(docker compose ps -q --status running gateway)
gateway_users() {  # gateway_users [-T] ARGS...
    local tty=()
    if [[ ${1:-} == -T ]]; then tty=(-T); shift; fi
    if [[ -n $running ]]; then
        docker compose exec "${tty[@]}" gateway gateway-users "$@"
    else
        docker compose run --rm --no-deps --quiet-pull "${tty[@]}" --entrypoint gateway-users gateway "$@"
    fi
}

if [[ ${1:-} == set && -n ${PASSWORD:-} ]]; then
    printf '%s\n' "$PASSWORD" | gateway_users -T "$@"
elif [[ -t 0 && -t 1 ]]; then
    gateway_users "$@"
else
    gateway_users -T "$@"
fi
