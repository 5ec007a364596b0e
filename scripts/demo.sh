#!/usr/bin/env bash
# make demo: start issuersim and switchd on their built-in defaults, run a few
# transactions through termsim, print the outcomes, stop everything, and exit
# 0 only when every outcome was the expected one.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../simulator/scenarios/demo-cards.env
source simulator/scenarios/demo-cards.env

out=demo-data
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

./bin/issuersim >"$out/issuersim.log" 2>&1 & pids+=($!)
./bin/switchd >"$out/switchd.log" 2>&1 & pids+=($!)

echo "== waiting for switchd (admin 127.0.0.1:8580) to sign on to every issuer"
if ! ./bin/termsim ready --admin 127.0.0.1:8580 --timeout 20s; then
  echo "switchd did not become ready; last log lines:"; tail -5 "$out/switchd.log" "$out/issuersim.log"
  exit 1
fi

failed=0
run() { # name expected-rc termsim-args...
  local name=$1 want=$2; shift 2
  echo "== $name (expect DE 39 $want)"
  if ./bin/termsim pay --expect "$want" "$@"; then
    echo "   PASS"
  else
    echo "   FAIL"; failed=$((failed+1))
  fi
}
run "purchase on card-a, approved"          00 --pan "$CARD_A"  --amount 15000
run "purchase on card-b, approved"          00 --pan "$CARD_B"  --amount 42000 --expiry 3012
run "gift certificate on prepaid, approved" 00 --pan "$PREPAID" --amount 5000
run "purchase above open-to-buy, declined"  51 --pan "$CARD_A"  --amount 2000000
run "expired card, declined by issuer"      54 --pan "$CARD_B"  --amount 1000 --expiry 2001
run "card of an unknown BIN, no route"      92 --pan "$FOREIGN" --amount 1000
run "PIN purchase, static terminal key"     00 --pan "$CARD_A"  --amount 3000 --pin "$DEMO_PIN"
run "PIN purchase, wrong PIN"               55 --pan "$CARD_A"  --amount 3000 --pin 9999
run "PIN purchase on the VAN link (DUKPT)"  00 --pan "$CARD_B"  --amount 3000 --pin "$DEMO_PIN" --dukpt --switch 127.0.0.1:8584

issue() { # tokenctl args... -> prints the token number
  ./bin/tokenctl issue "$@" | sed -n 's/.*"token": "\([0-9]*\)".*/\1/p'
}
echo "== provisioning tokens through the admin API (tokenctl)"
DEVICE=$(issue --pan "$CARD_A" --expiry 3012 --kind device)
ONETIME=$(issue --pan "$CARD_B" --expiry 3012 --kind one-time)
BOUND=$(issue --pan "$CARD_A" --expiry 3012 --kind device --merchant OTHERMERCHANT01)
if [ -z "$DEVICE" ] || [ -z "$ONETIME" ] || [ -z "$BOUND" ]; then
  echo "   FAIL: tokenctl issue"; failed=$((failed+1))
else
  echo "   issued device ${DEVICE:0:6}******${DEVICE:12}, one-time ${ONETIME:0:6}******${ONETIME:12}"
  run "device token, approved"                00 --token "$DEVICE"  --amount 12000
  run "device token with PIN, approved"       00 --token "$DEVICE"  --amount 12000 --pin "$DEMO_PIN" --pin-pan "$CARD_A"
  run "one-time card number, first use"       00 --token "$ONETIME" --amount 8000
  run "one-time card number, reused"          33 --token "$ONETIME" --amount 8000
  run "token outside its merchant domain"     57 --token "$BOUND"   --amount 1000
  ./bin/tokenctl suspend "$DEVICE" >/dev/null
  run "suspended token"                       62 --token "$DEVICE"  --amount 1000
  ./bin/tokenctl resume "$DEVICE" >/dev/null
  run "resumed token"                         00 --token "$DEVICE"  --amount 1000
  ./bin/tokenctl delete "$DEVICE" >/dev/null
  run "deleted token"                         14 --token "$DEVICE"  --amount 1000
fi

echo "== switch metrics (requests by route and response code)"
if command -v curl >/dev/null; then
  curl -s http://127.0.0.1:8580/metrics | grep '^switch_requests_total' || true
fi
if [ "$failed" -ne 0 ]; then
  echo "demo: $failed scenario(s) FAILED (logs in $out/)"
  exit 1
fi
echo "demo: all scenarios passed (logs in $out/)"
