#!/usr/bin/env bash
# Measure a running process (and its descendants) over a window:
#
#   measure.sh PID SECONDS        -> stdout: "rss_kb_max cpu_percent"
#
# rss_kb_max  : the largest sum of VmRSS (kB, /proc/P/status) over PID and all
#               its live descendants, sampled every INTERVAL s (default 1).
# cpu_percent : CPU time (utime+stime, all threads, from /proc/P/stat) used by
#               the tree during the window, / wall time / clock ticks * 100,
#               i.e. percent of ONE core (200 = two cores flat out). Children
#               that exit during the window count through the parent's
#               cutime+cstime once reaped.
# No warm-up is done here: start it after the warm-up (e.g. sleep 30 first).
# A summary (samples, RSS min/mean) goes to stderr. Works for any PID, e.g. the
# Riser gateway: measure.sh "$(pgrep -o -x riser-gateway)" 60
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 PID SECONDS" >&2; exit 2; }
PID=$1 SECONDS_=$2
INTERVAL=${INTERVAL:-1}
HZ=$(getconf CLK_TCK)
[ -r "/proc/$PID/stat" ] || { echo "no process $PID" >&2; exit 1; }

# PID and all descendants (ps copes with processes vanishing mid-scan; the
# root is always included while it lives).
tree() {
  ps -e -o pid=,ppid= | awk -v root="$PID" '
    { parent[$1] = $2 }
    END {
      keep[root] = 1; n = 1
      while (n) { n = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; n = 1 } }
      for (p in keep) print p
    }'
}

# Sum of utime+stime over the tree, plus the root's cutime+cstime (reaped children).
cpu_ticks() {
  local total=0 p s f
  for p in $(tree); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }                      # fields from 3 (state) on
    read -r -a f <<<"$s"
    total=$(( total + f[11] + f[12] ))   # utime (14), stime (15)
    if [ "$p" = "$PID" ]; then total=$(( total + f[13] + f[14] )); fi   # cutime, cstime
  done
  echo "$total"
}

rss_kb() {
  local total=0 p v
  for p in $(tree); do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || true
    total=$(( total + ${v:-0} ))
  done
  echo "$total"
}

now() { awk '{print $1}' /proc/uptime; }

t0=$(now); c0=$(cpu_ticks)
end=$(awk -v t="$t0" -v d="$SECONDS_" 'BEGIN {print t + d}')
max=0 min=0 sum=0 n=0
while :; do
  kill -0 "$PID" 2>/dev/null || { echo "process $PID exited during the measurement" >&2; exit 1; }
  r=$(rss_kb)
  (( r > max )) && max=$r
  (( n == 0 || r < min )) && min=$r
  sum=$(( sum + r )); n=$(( n + 1 ))
  t=$(now)
  awk -v t="$t" -v e="$end" 'BEGIN {exit !(t >= e)}' && break
  left=$(awk -v t="$t" -v e="$end" -v i="$INTERVAL" 'BEGIN {d = e - t; print (d < i ? d : i)}')
  sleep "$left"
done
t1=$(now); c1=$(cpu_ticks)
cpu=$(awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" \
  'BEGIN {printf "%.2f", (c1 - c0) / hz / (t1 - t0) * 100}')
echo "pid $PID: $n samples over $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s," \
     "RSS kB min $min mean $(( sum / n )) max $max, processes $(tree | wc -l), CPU ticks $(( c1 - c0 )) (HZ $HZ)" >&2
echo "$max $cpu"
