# Helpers for the supermarket's CGI scripts (busybox sh, run by busybox httpd).
# /etc/supermarket sets SERVICE and VERSION (written by build-images.sh).
. /etc/supermarket
# The replica that answers: its hostname (the container's, one per replica).
REPLICA=$(hostname)
# The client's address as the replica sees it (httpd listens on [::]:80, dual stack).
CLIENT=${REMOTE_ADDR#\[}
CLIENT=${CLIENT%\]}
CLIENT=${CLIENT#::ffff:}

# param NAME: NAME's value in the query string, reduced to [A-Za-z0-9_-] (it goes into
# file names, URLs and JSON).
param() {
  local kv IFS='&'
  for kv in $QUERY_STRING; do
    case $kv in
    "$1="*) printf '%s' "${kv#*=}" | tr -cd 'A-Za-z0-9_-'; return ;;
    esac
  done
}

# reply STATUS [FIELDS]: one JSON object saying which service, replica and version
# answered, plus FIELDS (already JSON: "k":v,...).
reply() {
  printf 'Status: %s\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n' "$1"
  printf '{"service":"%s","replica":"%s","version":%s%s}\n' "$SERVICE" "$REPLICA" "$VERSION" "${2:+,$2}"
}

# json_field NAME JSON: the value of a flat "NAME":value (string or number) in JSON.
json_field() {
  printf '%s' "$2" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}
# (busybox 1.35's wget -T segfaults: callers use `timeout N wget` instead.)
