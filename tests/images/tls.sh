#!/bin/bash
# TLS against a real docker-registry on a non-loopback address (10.77.0.1) in a private
# network namespace. Run as: unshare -n bash tls.sh BERTH_BINARY WORKDIR
# Checks: HTTPS is verified by default (self-signed → refused), --tls-verify=false,
# a CA in certs.d/<host>/ca.crt, the insecure-registries config, and HTTP fallback for an
# insecure plain-HTTP registry.
set -euo pipefail
BERTH=$1
W=$2
cd "$W"
ip link set lo up
ip addr add 10.77.0.1/32 dev lo
H=10.77.0.1:5000
P=10.77.0.1:5001

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=berth-test-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=10.77.0.1 2>/dev/null
printf 'subjectAltName=IP:10.77.0.1\n' >ext.cnf
openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 1 -extfile ext.cnf 2>/dev/null

reg() { # name addr [tls]
	mkdir -p "$W/$1"
	{
		printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n'
		printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$W/$1/data"
		printf 'http:\n  addr: %s\n' "$2"
		if [ -n "${3:-}" ]; then printf '  tls:\n    certificate: %s\n    key: %s\n' "$W/srv.crt" "$W/srv.key"; fi
	} >"$W/$1/config.yml"
	docker-registry serve "$W/$1/config.yml" >"$W/$1/log" 2>&1 &
	echo $!
}
R1=$(reg tls $H tls)
R2=$(reg plain $P)
trap 'kill $R1 $R2 2>/dev/null || true' EXIT
for port in 5000 5001; do
	for _ in $(seq 200); do (echo >/dev/tcp/10.77.0.1/$port) 2>/dev/null && break; sleep 0.05; done
done

export BERTH_AUTH_FILE=$W/auth.json BERTH_CERTS_DIR=$W/certs.d BERTH_REGISTRIES_CONF=$W/registries.json
B() { "$BERTH" "$@"; }
pass=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
fail() { echo "FAIL - $1"; exit 1; }

mkdir -p rootfs/bin && cp /bin/busybox rootfs/bin/ && tar -cf rootfs.tar -C rootfs .
B --root "$W/r1" import rootfs.tar $H/tls/bb:v1 >/dev/null

rc=0; B --root "$W/r1" push $H/tls/bb:v1 >out 2>err || rc=$?
[ $rc = 1 ] || fail "push to a self-signed registry must fail with 1, docker's (got $rc)"
grep -qi 'certificate' err || fail "error names the certificate problem: $(cat err)"
ok "self-signed certificate refused by default: $(grep -oi 'invalid peer certificate[^:]*: *[A-Za-z]*' err | head -1)"

B --root "$W/r1" --tls-verify=false push $H/tls/bb:v1 >/dev/null 2>&1 || fail "--tls-verify=false push"
ok "--tls-verify=false push over HTTPS"

mkdir -p "certs.d/$H" && cp ca.crt "certs.d/$H/ca.crt"
B --root "$W/r2" pull $H/tls/bb:v1 >/dev/null 2>&1 || fail "pull with CA from certs.d"
ok "verified HTTPS with the registry CA from certs.d"

rm -rf "certs.d/$H"
echo "{\"insecure\": [\"$H\", \"$P\"]}" >registries.json
B --root "$W/r3" pull $H/tls/bb:v1 >/dev/null 2>&1 || fail "pull from a registry marked insecure"
ok "insecure registry from the config (HTTPS, unverified)"

B --root "$W/r1" tag $H/tls/bb:v1 $P/plain/bb:v1
B --root "$W/r1" push $P/plain/bb:v1 >/dev/null 2>&1 || fail "push to an insecure plain-HTTP registry"
rm registries.json
rc=0; B --root "$W/r4" pull $P/plain/bb:v1 >/dev/null 2>err || rc=$?
[ $rc = 1 ] || fail "plain HTTP must not be used for a registry not marked insecure"
B --root "$W/r4" --tls-verify=false pull $P/plain/bb:v1 >/dev/null 2>&1 || fail "HTTP fallback with --tls-verify=false"
ok "plain HTTP only for insecure registries (fallback after HTTPS fails)"

[ "$(B --root "$W/r2" inspect $H/tls/bb:v1 | grep -m1 '"Id"')" = "$(B --root "$W/r1" inspect $H/tls/bb:v1 | grep -m1 '"Id"')" ] || fail "same image id"
echo "$pass passed, 0 failed"
