#!/bin/bash
# run.sh VARIANT BINARY SECONDS: fresh database, the registry under callgrind, the bench, a clean stop.
v=$1; bin=$2; secs=$3
B=/work/wt/access/target/debug
cd /tmp/bench
rm -f $v.db*
[ "$v" = after ] && cp tmpl/after.db* .
valgrind --tool=callgrind --callgrind-out-file=/tmp/bench/cg.$v.$secs "$bin" --config /tmp/bench/$v.toml > /tmp/bench/$v.log 2>&1 &
pid=$!
for i in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/53062) 2>/dev/null && break; sleep 0.5; done
sleep 2
$B/kyso bench authorize --server https://127.0.0.1:53062 --tls-ca ca.pem --tls-cert signer.pem --tls-key signer.key \
  --seed-database-url sqlite:/tmp/bench/$v.db --organisations 100 --certificates 1000 \
  --streams 2 --rate 40 --duration-secs $secs --warmup-secs 2 > /tmp/bench/$v.$secs.json 2>/tmp/bench/$v.$secs.err
kill -TERM $pid
wait $pid
tot=$(callgrind_annotate cg.$v.$secs 2>/dev/null | grep "PROGRAM TOTALS" | awk '{print $1}' | tr -d ,)
h=$(callgrind_annotate --inclusive=yes cg.$v.$secs 2>/dev/null | grep -m1 "Registry>::authorize::{{closure}} \[" | awk '{print $1}' | tr -d ,)
calls=$(grep '"calls"' /tmp/bench/$v.$secs.json | tr -dc 0-9)
echo "$v secs=$secs calls=$calls total_Ir=$tot handler_Ir=$h"
