#!/usr/bin/env bash
# Idle cost of the dashboard: N symbols on screen (default 30), nothing happening.
#
# Starts a loopback ML engine (python3, 127.0.0.1 only) that answers every symbol with a
# neutral signal (so every decision is a HOLD and nothing is queued), runs the release binary
# in tmux at 120x40 with a check interval of an hour, waits for start-up, then samples the
# process over the window: CPU time (/proc/PID/stat utime+stime), resident memory
# (/proc/PID/status VmRSS), and per thread (/proc/PID/task/*/): its name (comm), CPU time
# (schedstat, ns; stat ticks where schedstat is missing) and wakeups (voluntary plus
# nonvoluntary context switches from status). Targets: under 1 % of one core, under 40 MiB.
# CPU is the process's own time, not wall clock, so other load on the machine does not count.
#
#   scripts/idle-cpu.sh                 # ML engine on loopback, 30 symbols, 60 s window
#   scripts/idle-cpu.sh --simulated     # the built-in simulated market (prices tick every second)
#   scripts/idle-cpu.sh --seconds 30 --symbols 30 --warmup 10 --no-build
#   scripts/idle-cpu.sh --bin /tmp/old-autotrade-tui   # measure another build (implies --no-build)
set -euo pipefail

SIMULATED=0
SECONDS_WINDOW=60
SYMBOLS=30
WARMUP=10
BUILD=1
BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --simulated) SIMULATED=1 ;;
        --seconds) SECONDS_WINDOW="$2"; shift ;;
        --symbols) SYMBOLS="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --no-build) BUILD=0 ;;
        --bin) BIN="$2"; BUILD=0; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$0")/.."
for tool in tmux python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
if [ "$BUILD" = 1 ]; then
    cargo build --release --quiet
fi
BIN="${BIN:-$PWD/target/release/autotrade-tui}"
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 2; }

TMP="$(mktemp -d)"
SOCKET="$TMP/tmux.sock"
ENGINE_PID=""
cleanup() {
    tmux -S "$SOCKET" send-keys -t idle q 2>/dev/null || true
    sleep 0.5
    tmux -S "$SOCKET" kill-server 2>/dev/null || true
    if [ -n "$ENGINE_PID" ]; then kill "$ENGINE_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

symbols=""
for i in $(seq 0 $((SYMBOLS - 1))); do
    symbols="$symbols\"S$i/USD\", "
done
symbols="[${symbols%, }]"

cat > "$TMP/config.toml" <<TOML
[auto_trade]
symbols = $symbols
check_interval_minutes = 60
TOML

if [ "$SIMULATED" = 0 ]; then
    cat > "$TMP/engine.py" <<'PY'
# A tiny ML engine on 127.0.0.1: a neutral signal and a manipulation phase for any symbol.
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNAL = json.dumps({"direction": "neutral", "confidence": 0.6, "entry_price": 100.0,
                     "take_profit": 105.0, "stop_loss": 98.0, "risk_reward_ratio": 2.5}).encode()
PHASE = json.dumps({"phase": "manipulation", "confidence": 0.55, "indicators": {}}).encode()

class Engine(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = SIGNAL if "/signals/" in self.path else PHASE
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Engine)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
PY
    python3 "$TMP/engine.py" "$TMP/port" &
    ENGINE_PID=$!
    for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
    [ -s "$TMP/port" ] || { echo "the loopback engine did not start" >&2; exit 1; }
    printf '[ml_engine]\nurl = "http://127.0.0.1:%s"\n' "$(cat "$TMP/port")" >> "$TMP/config.toml"
    SOURCE="loopback ML engine"
else
    SOURCE="simulated market"
fi

tmux -S "$SOCKET" -f /dev/null new-session -d -s idle -x 120 -y 40 \
    "exec env -u NO_COLOR TERM=xterm-256color '$BIN' --config '$TMP/config.toml' --data-dir '$TMP/data'"
PID="$(tmux -S "$SOCKET" list-panes -t idle -F '#{pane_pid}')"
tmux -S "$SOCKET" pipe-pane -t idle -o "cat > '$TMP/tty.out'"

sleep "$WARMUP"
screen="$(tmux -S "$SOCKET" capture-pane -t idle -p)"
if ! grep -q "PAPER" <<<"$screen" || ! grep -Eq "Signals (\($SYMBOLS\)|.* of $SYMBOLS )" <<<"$screen"; then
    echo "the dashboard is not showing; screen:" >&2
    echo "$screen" >&2
    exit 1
fi

# One sample of every thread: tid, name, CPU ns, wakeups. Names may hold spaces; stat's fields
# are read after the last ')'.
sample() {
    python3 - "$PID" "$(getconf CLK_TCK)" <<'PY'
import os, sys
pid, hz = sys.argv[1], int(sys.argv[2])
base = f"/proc/{pid}/task"
for tid in sorted(os.listdir(base), key=int):
    try:
        d = f"{base}/{tid}"
        name = open(f"{d}/comm").read().strip().replace(" ", "_") or "?"
        try:
            ns = int(open(f"{d}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            f = open(f"{d}/stat").read().rsplit(")", 1)[1].split()
            ns = (int(f[11]) + int(f[12])) * 1_000_000_000 // hz
        sw = 0
        for line in open(f"{d}/status"):
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                sw += int(line.split()[1])
        print(tid, name, ns, sw)
    except OSError:
        pass  # the thread ended while we looked
PY
}

HZ="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
tty_bytes() { stat -c %s "$TMP/tty.out" 2>/dev/null || echo 0; }

t0="$(date +%s.%N)"; c0="$(cpu_ticks)"; b0="$(tty_bytes)"; sample > "$TMP/threads0"
sleep "$SECONDS_WINDOW"
t1="$(date +%s.%N)"; c1="$(cpu_ticks)"; b1="$(tty_bytes)"; sample > "$TMP/threads1"
rss_kb="$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status")"
hwm_kb="$(awk '/^VmHWM/ { print $2 }' "/proc/$PID/status")"
threads="$(awk '/^Threads/ { print $2 }' "/proc/$PID/status")"

awk -v c0="$c0" -v c1="$c1" -v hz="$HZ" -v t0="$t0" -v t1="$t1" -v rss="$rss_kb" \
    -v hwm="$hwm_kb" -v b0="$b0" -v b1="$b1" -v thr="$threads" \
    -v src="$SOURCE" -v n="$SYMBOLS" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
FNR == NR { name0[$1] = $2; ns0[$1] = $3; sw0[$1] = $4; next }
{
    # A thread that started during the window counts from zero.
    tid = $1; name[tid] = $2; dns[tid] = $3 - ns0[tid]; dsw[tid] = $4 - sw0[tid]
    if (!(tid in ns0)) { born++ }
    seen[tid] = 1
}
END {
    secs = t1 - t0
    for (t in name0) if (!(t in seen)) gone++
    for (t in name) { tns += dns[t]; tsw += dsw[t] }
    printf "idle dashboard: %d symbols, %s, 120x40, %.0f s window (load %s)\n", n, src, secs, load
    printf "cpu      %.2f %% of one core  (%d ticks of 1/%d s; threads: %.3f %%)   target < 1 %%\n", \
        (c1 - c0) / hz / secs * 100, c1 - c0, hz, tns / 1e9 / secs * 100
    printf "rss      %.1f MiB  (peak %.1f MiB, %d threads)   target < 40 MiB\n", rss / 1024, hwm / 1024, thr
    printf "wakeups  %.1f /s  (voluntary + nonvoluntary context switches, all threads)\n", tsw / secs
    printf "terminal %.0f bytes/s written\n", (b1 - b0) / secs
    printf "per thread (cpu %% of one core, wakeups/s):\n"
    for (t in name) {
        printf "  %-18s %6d  %7.3f %%  %6.2f /s\n", name[t], t, dns[t] / 1e9 / secs * 100, dsw[t] / secs | "sort -k3 -rn"
    }
    close("sort -k3 -rn")
    if (born + gone > 0) printf "  (%d threads started, %d ended during the window; an ended thread'"'"'s share is in the total only)\n", born, gone
}' "$TMP/threads0" "$TMP/threads1"
