#!/bin/sh
# Runs inside the cgroup v2 VM (tests/v2vm/run.sh): the resource checks of
# tests/tests/resources.rs against berth-runtime, measured from cgroup files and the
# runtime's own output. One PASS/FAIL line per check, then "N passed, M failed".
# POSIX sh (busybox); exits 1 if any check failed.

R="/payload/berth-runtime --root /run/berth-v2"
CG=/sys/fs/cgroup/berth-test
B=/payload/b
W=/tmp/berth-v2work
CYCLES=${CYCLES:-500}
mkdir -p "$W"
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "PASS $1${2:+: $2}"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
now_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }

# wait_until SECONDS CMD...: poll CMD every 50 ms.
wait_until() {
    t=$(($1 * 20)); shift
    while [ "$t" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05; t=$((t - 1))
    done
    return 1
}
# (state's whole output first: an early-exiting grep -q would break its pipe.)
status_is() { st=$($R state "$1" 2>/dev/null) && echo "$st" | grep -q "\"status\": \"$2\""; }
# keyed FILE KEY: value of KEY in a flat-keyed cgroup file.
keyed() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# json_num KEY < json: the first number after "KEY": (enough for the flat fields used here).
json_num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" | head -n 1; }
run_d() { $R run -d --bundle "$B/$1" "$1" </dev/null >"$W/$1.out" 2>"$W/$1.err"; }
cleanup_one() { $R delete --force "$1" >/dev/null 2>&1; }

echo "guest: $(uname -r), cgroup: $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# --- io: weight and throttles land in io.max and io.weight (or io.bfq.weight).
check_io() {
    n=io
    dd if=/dev/zero of=/tmp/io.img bs=1M count=4 2>/dev/null
    modprobe loop 2>/dev/null
    [ -e /dev/loop-control ] || mknod /dev/loop-control c 10 237 2>/dev/null
    [ -e /dev/loop0 ] || mknod /dev/loop0 b 7 0 2>/dev/null
    loop=$(losetup -f 2>/dev/null) && losetup "$loop" /tmp/io.img 2>/dev/null \
        || { fail io "no loop device to throttle"; return; }
    mm=$(cat "/sys/block/${loop##*/}/dev")
    sed -i -e "s/1111/${mm%%:*}/g" -e "s/2222/${mm##*:}/g" "$B/$n/config.json"
    if ! run_d $n; then
        fail io "$(cat "$W/$n.err")"; losetup -d "$loop"; return
    fi
    max=$(grep "^$mm " $CG/$n/io.max)
    w=$(cat $CG/$n/io.bfq.weight 2>/dev/null || cat $CG/$n/io.weight)
    cleanup_one $n
    losetup -d "$loop"
    case "$max" in
    *rbps=1048576*wiops=77*)
        case "$w" in
        *"default 100"*) fail io "io.max '$max' but the weight was not set: '$w'" ;;
        *) pass io "io.max '$max', weight '$(echo $w | tr '\n' ' ')'" ;;
        esac ;;
    *) fail io "io.max for $mm: '$max'" ;;
    esac
}

# --- OOM: 5 MiB limit, init allocates 50 MB -> run exits 137 and events reports oom.
check_oom() {
    n=oom
    rm -f /payload/rootfs/tmp/go-oom
    $R run --bundle "$B/$n" "$n" </dev/null >"$W/$n.out" 2>"$W/$n.err" &
    runpid=$!
    wait_until 20 status_is $n running || { fail oom "container never ran: $(cat "$W/$n.err")"; kill $runpid; return; }
    max=$(cat $CG/$n/memory.max)
    $R events --interval 100ms $n >"$W/ev.out" 2>"$W/ev.err" &
    evpid=$!
    wait_until 20 grep -q '"type":"stats"' "$W/ev.out" || fail oom-events "no stats line: $(cat "$W/ev.err")"
    touch /payload/rootfs/tmp/go-oom
    wait $runpid
    rc=$?
    wait_until 20 sh -c "! kill -0 $evpid" || { fail oom-events "events did not exit"; kill $evpid; }
    wait $evpid
    evrc=$?
    if [ "$max" = 5242880 ] && [ "$rc" = 137 ]; then
        pass oom "memory.max $max, run exit $rc"
    else
        fail oom "memory.max $max, run exit $rc (want 5242880, 137): $(cat "$W/$n.err")"
    fi
    if grep -q "{\"type\":\"oom\",\"id\":\"$n\"}" "$W/ev.out" && [ "$evrc" = 0 ]; then
        pass oom-event "events printed $(grep -c '"type":"oom"' "$W/ev.out") oom line(s), exit $evrc"
    else
        fail oom-event "exit $evrc, output: $(cut -c1-120 "$W/ev.out") $(cat "$W/ev.err")"
    fi
}

# --- pids.max stops a (bounded) fork bomb.
check_pids() {
    n=pids
    run_d $n || { fail pids "run: $(cat "$W/$n.err")"; return; }
    wait_until 30 grep -q bomb-over "$W/$n.out"
    cur=$(cat $CG/$n/pids.current)
    max=$(cat $CG/$n/pids.max)
    ev=$(keyed $CG/$n/pids.events max)
    if [ "$max" = 20 ] && [ "$cur" -le 20 ] && [ "$cur" -ge 18 ] && [ "$ev" -gt 0 ] &&
        grep -q "can't fork" "$W/$n.err"; then
        pass pids "pids.max $max, pids.current $cur, pids.events max $ev"
    else
        fail pids "pids.max $max, pids.current $cur, pids.events max $ev; stderr: $(head -c 300 "$W/$n.err")"
    fi
    cleanup_one $n
}

# --- cpu quota throttles (10% of a cpu).
check_cpu() {
    n=cpu
    run_d $n || { fail cpu "run: $(cat "$W/$n.err")"; return; }
    u0=$(keyed $CG/$n/cpu.stat usage_usec); t0=$(now_ms)
    sleep 2
    u1=$(keyed $CG/$n/cpu.stat usage_usec); t1=$(now_ms)
    thr=$(keyed $CG/$n/cpu.stat nr_throttled)
    ev=$($R events --stats $n)
    ethr=$(echo "$ev" | json_num throttledPeriods)
    pct=$(( (u1 - u0) / (t1 - t0) / 10 ))
    if [ "$(cat $CG/$n/cpu.max)" = "10000 100000" ] && [ "${thr:-0}" -gt 0 ] &&
        [ "${ethr:-0}" -gt 0 ] && [ "$pct" -lt 25 ]; then
        pass cpu "cpu.max $(cat $CG/$n/cpu.max), nr_throttled $thr, events throttledPeriods $ethr, used ${pct}% of a cpu"
    else
        fail cpu "cpu.max $(cat $CG/$n/cpu.max), nr_throttled $thr, events throttledPeriods $ethr, used ${pct}%"
    fi
    cleanup_one $n
}

# --- update changes limits of a running container.
check_update() {
    n=upd
    run_d $n || { fail update "run: $(cat "$W/$n.err")"; return; }
    errs=""
    $R update --memory 64m --memory-reservation 32m --cpu-quota 20000 --cpu-period 100000 \
        --cpu-share 512 --pids-limit 33 $n 2>"$W/u.err" || errs="$errs update: $(cat "$W/u.err");"
    [ "$(cat $CG/$n/memory.max)" = 67108864 ] || errs="$errs memory.max $(cat $CG/$n/memory.max);"
    [ "$(cat $CG/$n/memory.low)" = 33554432 ] || errs="$errs memory.low $(cat $CG/$n/memory.low);"
    [ "$(cat $CG/$n/cpu.max)" = "20000 100000" ] || errs="$errs cpu.max $(cat $CG/$n/cpu.max);"
    # runc's shares -> weight: 1 + (512 - 2) * 9999 / 262142 = 20
    [ "$(cat $CG/$n/cpu.weight)" = 20 ] || errs="$errs cpu.weight $(cat $CG/$n/cpu.weight);"
    [ "$(cat $CG/$n/pids.max)" = 33 ] || errs="$errs pids.max $(cat $CG/$n/pids.max);"
    # Only the period: the quota stays (cpu.max takes both).
    $R update --cpu-period 50000 $n 2>"$W/u.err" || errs="$errs period: $(cat "$W/u.err");"
    [ "$(cat $CG/$n/cpu.max)" = "20000 50000" ] || errs="$errs cpu.max after period $(cat $CG/$n/cpu.max);"
    # memory+swap 128m with the 64m limit -> memory.swap.max 64m.
    if [ -e $CG/$n/memory.swap.max ]; then
        $R update --memory-swap 128m $n 2>"$W/u.err" || errs="$errs swap: $(cat "$W/u.err");"
        [ "$(cat $CG/$n/memory.swap.max)" = 67108864 ] || errs="$errs memory.swap.max $(cat $CG/$n/memory.swap.max);"
    fi
    echo '{"memory":{"limit":100000000},"cpu":{"shares":0,"quota":0},"blockIO":{"weight":0},"pids":{"limit":44}}' >"$W/res.json"
    $R update -r "$W/res.json" $n 2>"$W/u.err" || errs="$errs -r: $(cat "$W/u.err");"
    [ "$(cat $CG/$n/pids.max)" = 44 ] || errs="$errs pids.max after -r $(cat $CG/$n/pids.max);"
    m=$(cat $CG/$n/memory.max)
    [ "$m" -le 100000000 ] && [ "$m" -ge 99995000 ] || errs="$errs memory.max after -r $m;"
    $R update --kernel-memory 1m $n 2>/dev/null && errs="$errs --kernel-memory accepted;"
    $R update --l3-cache-schema L3:0=f $n 2>/dev/null && errs="$errs --l3-cache-schema accepted;"
    $R kill $n KILL
    wait_until 10 status_is $n stopped
    if $R update --memory 32m $n 2>"$W/u.err"; then
        errs="$errs update of a stopped container worked;"
    else
        grep -q "container not running" "$W/u.err" || errs="$errs stopped: $(cat "$W/u.err");"
    fi
    if [ -z "$errs" ]; then
        pass update "memory.max, memory.low, cpu.max, cpu.weight, pids.max, memory.swap.max changed; -r; refusals"
    else
        fail update "$errs"
    fi
    cleanup_one $n
}

counter() { cat /payload/rootfs/tmp/c 2>/dev/null; }
counter_above() { c=$(counter); [ -n "$c" ] && [ "$c" -gt "$1" ]; }

# --- pause freezes (counter stops), resume thaws.
check_pause() {
    n=pause
    rm -f /payload/rootfs/tmp/c
    run_d $n || { fail pause "run: $(cat "$W/$n.err")"; return; }
    wait_until 20 counter_above 0 || { fail pause "counter never started"; cleanup_one $n; return; }
    $R pause $n
    st=$(status_is $n paused && echo paused)
    fr=$(cat $CG/$n/cgroup.freeze)
    p0=$(counter); sleep 1; p1=$(counter)
    $R resume $n
    st2=$(status_is $n running && echo running)
    if wait_until 20 counter_above "$p1" && [ "$p0" = "$p1" ] && [ "$st" = paused ] &&
        [ "$fr" = 1 ] && [ "$st2" = running ]; then
        pass pause-resume "counter $p0 -> $p1 in 1 s while paused, $(counter) after resume"
    else
        fail pause-resume "state $st/$st2, cgroup.freeze $fr, counter $p0 -> $p1 -> $(counter)"
    fi
    cleanup_one $n
}

# --- delete --force of a paused container.
check_pdel() {
    n=pdel
    run_d $n || { fail delete-force-paused "run: $(cat "$W/$n.err")"; return; }
    procs=$(cat $CG/$n/cgroup.procs)
    $R pause $n
    if $R delete --force $n 2>"$W/d.err" && [ ! -e $CG/$n ] && ! $R state $n >/dev/null 2>&1; then
        left=""
        for p in $procs; do
            wait_until 5 sh -c "[ ! -e /proc/$p ] || grep -q '^State:.*Z' /proc/$p/status" || left="$left $p"
        done
        if [ -z "$left" ]; then
            pass delete-force-paused "$(echo $procs | wc -w) processes gone, cgroup removed"
        else
            fail delete-force-paused "processes left:$left"
        fi
    else
        fail delete-force-paused "$(cat "$W/d.err"); cgroup exists: $([ -e $CG/$n ] && echo yes || echo no)"
    fi
}

# --- stats move when the container works.
check_stats() {
    n=stats
    rm -f /payload/rootfs/tmp/go-stats /payload/rootfs/tmp/done-stats /payload/rootfs/tmp/big
    run_d $n || { fail stats "run: $(cat "$W/$n.err")"; return; }
    s0=$($R events --stats $n)
    touch /payload/rootfs/tmp/go-stats
    wait_until 60 [ -e /payload/rootfs/tmp/done-stats ]
    s1=$($R events --stats $n)
    c0=$(echo "$s0" | json_num total); c1=$(echo "$s1" | json_num total)
    # data.memory.usage.usage (first "usage":{...,"usage":N})
    m0=$(echo "$s0" | sed -n 's/.*"memory":{[^}]*"usage":{"limit":[0-9]*,"usage":\([0-9]*\).*/\1/p')
    m1=$(echo "$s1" | sed -n 's/.*"memory":{[^}]*"usage":{"limit":[0-9]*,"usage":\([0-9]*\).*/\1/p')
    p1=$(echo "$s1" | sed -n 's/.*"pids":{"current":\([0-9]*\).*/\1/p')
    if [ "${c1:-0}" -gt $((${c0:-0} + 20000000)) ] && [ "${m1:-0}" -gt $((${m0:-0} + 8388608)) ] &&
        [ "${p1:-0}" -ge 2 ]; then
        pass stats "cpu total $c0 -> $c1 ns, memory usage $m0 -> $m1, pids $p1"
    else
        fail stats "cpu total $c0 -> $c1, memory usage $m0 -> $m1, pids $p1"
    fi
    cleanup_one $n
}

# --- the generated BPF device program: deny outside the allow list, allow inside.
check_devices() {
    $R run --bundle $B/devdeny devdeny </dev/null >"$W/dd.out" 2>"$W/dd.err"
    $R run --bundle $B/devallow devallow </dev/null >"$W/da.out" 2>"$W/da.err"
    if grep -q null-ok "$W/dd.out" && grep -q kmsgx-denied "$W/dd.out" &&
        grep -q "Operation not permitted" "$W/dd.err"; then
        pass device-deny "open of c 1:11 outside the allow list: EPERM; /dev/null allowed"
    else
        fail device-deny "$(cat "$W/dd.out" "$W/dd.err")"
    fi
    if grep -q kmsgx-open "$W/da.out"; then
        pass device-allow "open of c 1:11 with an allow rule works"
    else
        fail device-allow "$(cat "$W/da.out" "$W/da.err")"
    fi
}

# --- CYCLES create/start/delete cycles: cgroup directory count back to the baseline.
check_cycles() {
    before=$(find /sys/fs/cgroup -type d | wc -l)
    t0=$(now_ms)
    bad=0
    i=0
    while [ $i -lt "$CYCLES" ]; do
        $R create --bundle $B/cycle cyc$i </dev/null >/dev/null 2>"$W/cyc.err" || { bad=$((bad + 1)); cat "$W/cyc.err"; }
        $R start cyc$i 2>>"$W/cyc.err" || bad=$((bad + 1))
        $R delete --force cyc$i 2>>"$W/cyc.err" || bad=$((bad + 1))
        i=$((i + 1))
    done
    t1=$(now_ms)
    after=$(find /sys/fs/cgroup -type d | wc -l)
    ms=$((t1 - t0))
    if [ "$bad" = 0 ] && [ "$before" = "$after" ]; then
        pass cycles "$CYCLES cycles in $((ms / 1000)).$((ms % 1000 / 100)) s ($((ms / CYCLES)) ms/cycle), cgroup dirs $before -> $after"
    else
        fail cycles "$bad failed commands, cgroup dirs $before -> $after, $((ms / 1000)) s: $(tail -3 "$W/cyc.err")"
    fi
}

check_oom
check_pids
check_cpu
check_update
check_pause
check_pdel
check_stats
check_devices
check_io
check_cycles
for n in oom pids cpu upd pause pdel stats devdeny devallow; do cleanup_one $n; done
rmdir $CG 2>/dev/null
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
