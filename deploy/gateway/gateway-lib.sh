# Shared by gateway-entrypoint and gateway-users (sourced, bash).
# Users live in one htpasswd file per role in the named volume mounted at $USERS_DIR:
#   editor.htpasswd  -> the normal webserver      viewer.htpasswd -> webserver-viewer (--read-only)
# Lines are "name:bcrypt-hash"; a name is in at most one file.

USERS_DIR=${GATEWAY_USERS_DIR:-/var/lib/gateway/users}
# Settings both scripts read, each default written here once (compose passes them as "" when unset).
BCRYPT_COST=${GATEWAY_BCRYPT_COST:-10}
AUTH_CACHE_SECONDS=${GATEWAY_AUTH_CACHE_SECONDS:-60}
ROLES=(editor viewer)
NAME_RE='^[a-z0-9._-]{1,64}$'
HASH_RE='^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$'
NGINX_CONF=/etc/gateway/nginx.conf
GENERATED=/tmp/nginx/generated

die() { echo "gateway: $*" >&2; exit 1; }
log() { echo "gateway: $*"; }

role_file() { echo "$USERS_DIR/$1.htpasswd"; }

valid_role() { [[ $1 == editor || $1 == viewer ]]; }

# Every line of every role file is "name:bcrypt" with a valid name, and no name appears twice.
# Prints nothing and returns 0, or names the file and line and returns 1. Never changes a file.
check_user_files() {
    local role file n line name hash seen=" " bad=0
    for role in "${ROLES[@]}"; do
        file=$(role_file "$role")
        [[ -e $file ]] || continue
        if [[ ! -f $file || ! -r $file ]]; then
            echo "gateway: $file is not a readable file" >&2; bad=1; continue
        fi
        n=0
        while IFS= read -r line || [[ -n $line ]]; do
            n=$((n + 1))
            [[ -z $line || $line == \#* ]] && continue
            name=${line%%:*}
            hash=${line#*:}
            if [[ $line != *:* || ! $name =~ $NAME_RE ]]; then
                echo "gateway: $file line $n is malformed: expected name:bcrypt-hash with a name of a-z 0-9 . _ - (at most 64)" >&2
                bad=1
            elif [[ ! $hash =~ $HASH_RE ]]; then
                echo "gateway: $file line $n (user '$name') is malformed: the password must be a bcrypt hash (\$2y\$...); use make user to set it" >&2
                bad=1
            elif [[ $seen == *" $name "* ]]; then
                echo "gateway: $file line $n: user '$name' appears twice (a user has exactly one role)" >&2
                bad=1
            fi
            seen+="$name "
        done < "$file"
    done
    for file in "$USERS_DIR"/*; do
        [[ -e $file ]] || continue
        case ${file##*/} in
            editor.htpasswd | viewer.htpasswd | .lock | .*.tmp.*) ;;
            *.htpasswd) echo "gateway: $file: unknown role '$(basename "$file" .htpasswd)' (roles: editor, viewer)" >&2; bad=1 ;;
        esac
    done
    return $bad
}

# "name role" for every user, sorted by name.
list_users() {
    local role file
    for role in "${ROLES[@]}"; do
        file=$(role_file "$role")
        [[ -f $file ]] || continue
        { grep -Ev '^(#|$)' "$file" || true; } | cut -d: -f1 | sed "s/\$/ $role/"
    done | sort
}

user_role() { list_users | awk -v u="$1" '$1 == u { print $2 }'; }

# edit_role_file FILE NAME HTPASSWD-OPTIONS...: apply htpasswd to a role file atomically: edit a
# copy in the same directory, then rename it over the original (readers see the old or the new
# file, never a half-written one).
edit_role_file() {
    local file=$1 name=$2; shift 2
    local tmp
    tmp=$(mktemp "$USERS_DIR/.$(basename "$file").tmp.XXXXXX")
    if [[ -f $file ]]; then cat "$file" > "$tmp"; fi
    if ! htpasswd "$@" "$tmp" "$name" >/dev/null 2>"$tmp.err"; then
        local err; err=$(cat "$tmp.err"); rm -f "$tmp" "$tmp.err"
        die "htpasswd failed on $file: $err"
    fi
    rm -f "$tmp.err"
    chmod 600 "$tmp"
    sync "$tmp" 2>/dev/null || true
    mv -f "$tmp" "$file"
}

# When nginx runs in this container, start a new auth-cache generation so that changed or
# removed credentials stop working at once (graceful reload; open connections are kept).
refresh_auth_cache() {
    [[ -s /tmp/nginx/nginx.pid && -d $GENERATED ]] || return 0
    kill -0 "$(cat /tmp/nginx/nginx.pid)" 2>/dev/null || return 0
    write_auth_cache_conf
    if nginx -c "$NGINX_CONF" -s reload 2>/dev/null; then
        sleep 1  # new workers take over within milliseconds; old ones finish their requests
    else
        log "warning: nginx reload failed; old credentials may work for up to ${AUTH_CACHE_SECONDS}s"
    fi
}

# Cache key: generation, client address and an HMAC of the credentials (gateway-auth.js; the key
# is written into each cache file). With the address in it, a client that is throttled cannot
# use someone else's cached login to test a guessed password.
write_auth_cache_conf() {
    local seconds=$AUTH_CACHE_SECONDS
    [[ $seconds =~ ^[0-9]+$ ]] || die "GATEWAY_AUTH_CACHE_SECONDS must be a number of seconds, got '$seconds'"
    local epoch; epoch="$(date +%s%N)"
    cat > "$GENERATED/auth-cache.conf.tmp" <<CONF
proxy_cache_key "$epoch:\$remote_addr:\$gateway_auth_key";
proxy_cache_valid 200 ${seconds}s;
CONF
    if [[ $seconds == 0 ]]; then echo "proxy_no_cache 1;" >> "$GENERATED/auth-cache.conf.tmp"; fi
    mv -f "$GENERATED/auth-cache.conf.tmp" "$GENERATED/auth-cache.conf"
}

# The first editor's generated password (gateway-entrypoint writes it, `make admin-password`
# prints it): "name:password", 0600, removed once that user's password is changed or the user is.
FIRST_ADMIN_FILE=$USERS_DIR/first-editor.password

# Serialize every change to the user files (entrypoint bootstrap and gateway-users).
lock_users() {
    exec 9>>"$USERS_DIR/.lock" || die "cannot write to $USERS_DIR (is the users volume writable by uid $(id -u)?)"
    flock -w 30 9 || die "another user change holds $USERS_DIR/.lock"
}
