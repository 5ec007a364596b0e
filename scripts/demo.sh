#!/usr/bin/env bash
# make demo: start issuersim (with its admin API) and switchd on the built-in
# defaults plus a keyed (MAC) terminal listener, run the shipped scenario
# suite (simulator/scenarios) through `termsim run`, print the pass/fail
# table, stop everything, and exit 0 only when every step passed.
# HSM=payshield (make demo HSM=payshield) also starts hsmsim, the payShield
# emulator, and gives it switchd's PIN/MAC role (PIN translation, MACs);
# PANs at rest stay on the software backend.
set -uo pipefail
cd "$(dirname "$0")/.."

out=demo-data
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

busy=()
hsm="${HSM:-software}"
case "$hsm" in software|payshield) ;; *) echo "demo: HSM=$hsm: want software or payshield"; exit 1 ;; esac
ports="8580 8583 8584 8585 9100 9101 9102 9103"
[ "$hsm" = payshield ] && ports="$ports 1500 1501"
for port in $ports; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy+=("$port"); fi
done
if [ "${#busy[@]}" -ne 0 ]; then
  echo "demo: something already listens on 127.0.0.1 port(s) ${busy[*]}; stop it first"
  exit 1
fi

# The built-in listeners plus a keyed terminal listener: every request must
# carry a retail MAC (ISO 9797-1 alg. 3) under the demo key mac-demo.
# Everything else (routes, admin, HSM, data folder) stays on the defaults.
cat >"$out/switchd.yaml" <<'EOF'
listeners:
  - {name: terminal, addr: 127.0.0.1:8583, pin: {key: tpk-demo}}
  - {name: van, addr: 127.0.0.1:8584, pin: {key: bdk-demo, dukpt: true}}
  - {name: keyed, addr: 127.0.0.1:8585, mac: {key: mac-demo, algorithm: retail}}
EOF

if [ "$hsm" = payshield ]; then
  # The PIN/MAC role on hsmsim: the demo keys are written under its
  # (public, test) LMK into the key store switchd's payshield backend reads.
  cat >>"$out/switchd.yaml" <<EOF
hsm:
  pin_mac: payshield
  payshield: {addr: 127.0.0.1:1500, key_store: $out/payshield-keys.json}
EOF
  ./bin/hsmsim --addr 127.0.0.1:1500 --admin 127.0.0.1:1501 --demo-keys "$out/payshield-keys.json" >"$out/hsmsim.log" 2>&1 & pids+=($!)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/1500) 2>/dev/null && break; sleep 0.1; done
  echo "== HSM: PIN translation and MACs on hsmsim (payShield host commands, 127.0.0.1:1500; faults on http://127.0.0.1:1501/faults); PANs at rest on the software backend"
else
  echo "== HSM: the software backend for PINs, MACs and PANs at rest (make demo HSM=payshield puts PIN/MAC on the hsmsim payShield emulator)"
fi

./bin/issuersim --admin 127.0.0.1:9100 >"$out/issuersim.log" 2>&1 & pids+=($!)
./bin/switchd --config "$out/switchd.yaml" >"$out/switchd.log" 2>&1 & pids+=($!)

echo "== waiting for switchd (admin 127.0.0.1:8580) to sign on to every issuer"
if ! ./bin/termsim ready --admin 127.0.0.1:8580 --timeout 20s; then
  echo "switchd did not become ready; last log lines:"; tail -5 "$out/switchd.log" "$out/issuersim.log"
  exit 1
fi

# Purchases, refund, full and partial cancels, net cancel after a withheld
# response, issuer timeout, one-time token reuse, token life cycle, PIN
# (static key and DUKPT), keyed MAC, declines and reconciliation; the
# issuer emulator's admin API withholds answers, the switch's admin API
# provisions tokens.
echo "== scenario suite: termsim run simulator/scenarios"
./bin/termsim run simulator/scenarios \
  --vars simulator/scenarios/demo-cards.env \
  --issuer-admin 127.0.0.1:9100 \
  --admin 127.0.0.1:8580 \
  --junit "$out/scenarios.xml"
status=$?

# A short open-loop load: 5 s at 200 TPS from 8 terminals, latency from the
# intended send time, with a report (report.json, report.html).
echo "== short load: termsim load --rate 200 --duration 5s --terminals 8"
./bin/termsim load --rate 200 --duration 5s --terminals 8 --quiet --report "$out/load"
load_status=$?

echo "== switch metrics (requests by route and response code; series at zero left out)"
if command -v curl >/dev/null; then
  curl -s http://127.0.0.1:8580/metrics | grep '^payswitch_requests_total' | grep -v ' 0$' || true
  echo "== HSM operations (count by backend and operation)"
  curl -s http://127.0.0.1:8580/metrics | grep '^hsm_operation_seconds_count' || true
fi
if [ "$status" -ne 0 ]; then
  echo "demo: scenario suite FAILED (termsim run exit $status; logs and JUnit XML in $out/)"
  exit 1
fi
if [ "$load_status" -ne 0 ]; then
  echo "demo: the short load had timeouts or errors (termsim load exit $load_status; report in $out/load/)"
  exit 1
fi
echo "demo: all scenarios passed and the load was answered in full with the PIN/MAC role on the $hsm backend (logs, JUnit XML and load report in $out/)"
