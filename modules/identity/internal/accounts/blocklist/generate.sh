#!/bin/sh
# Regenerates passwords.txt, the blocklist of common and breached passwords,
# from the npm package @zxcvbn-ts/language-common (MIT; see README.md).
#
#   sh generate.sh [VERSION]     # from any folder, or through `go generate`
#
# Needs npm (and node, which comes with it). Keeps the package's passwords of
# at least MIN characters (Unicode code points) once lower-cased: anything
# shorter is refused by the length rule anyway. One per line, byte-sorted,
# without duplicates.
set -eu
VERSION=${1:-4.1.3}
MIN=10
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@zxcvbn-ts/language-common@$VERSION" >/dev/null && tar -xzf ./*.tgz)
node -e '
const list = require(process.argv[1]);
const min = Number(process.argv[2]);
for (const p of list) {
  const s = p.toLowerCase();
  if ([...s].length >= min && !/[\n\r]/.test(s)) console.log(s);
}' "$tmp/package/src/passwords.json" "$MIN" | LC_ALL=C sort -u >"$here/passwords.txt"
cp "$tmp/package/LICENSE.txt" "$here/LICENSE"
echo "passwords.txt: $(wc -l <"$here/passwords.txt") entries, $(wc -c <"$here/passwords.txt") bytes (@zxcvbn-ts/language-common@$VERSION)"
