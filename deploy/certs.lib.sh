# Sourced by deploy/peer-certs.sh and deploy/webhook-certs.sh (not run on its own).
#
# make_ca_and_cert DIR DAYS CA_CN CN EXTENSIONS: a new CA (CN CA_CN) and one certificate
# (CN CN, with the openssl extension lines EXTENSIONS: subjectAltName, extendedKeyUsage)
# signed by it, written to DIR as ca.crt, tls.crt and tls.key (DIR 0700, the key 0600).
# The CA's key is not kept: what it signed is all anyone needs, and nobody can sign more.
make_ca_and_cert() {
  local dir=$1 days=$2 ca_cn=$3 cn=$4 extensions=$5
  command -v openssl >/dev/null || { echo "$(basename "$0"): openssl is missing (apt-get install openssl)" >&2; exit 1; }
  mkdir -p "$dir"
  chmod 700 "$dir"
  local work
  work=$(mktemp -d)
  openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=$ca_cn" \
    -keyout "$work/ca.key" -out "$dir/ca.crt" 2>/dev/null &&
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" \
    -keyout "$dir/tls.key" -out "$work/tls.csr" 2>/dev/null &&
  printf '%s\n' "$extensions" > "$work/ext" &&
  openssl x509 -req -in "$work/tls.csr" -CA "$dir/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -CAserial "$work/ca.srl" -days "$days" -extfile "$work/ext" \
    -out "$dir/tls.crt" 2>/dev/null
  local rc=$?
  rm -rf "$work"
  ((rc == 0)) || { echo "$(basename "$0"): openssl failed making the certificates in $dir" >&2; exit 1; }
  chmod 600 "$dir/tls.key"
}
