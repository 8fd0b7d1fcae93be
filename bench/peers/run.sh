#!/usr/bin/env bash
# Peer benchmark for diffsim: installs and runs peer ODE solvers on the same problems at
# the same tolerances and prints one markdown table.  See bench/peers/README.md.
#
# Environment knobs:
#   BUDGET=2          seconds of repeated solving per case (after warm-up; >= 3 repeats)
#   ROUNDS=3          rounds over all solver peers, one after another; the table keeps each
#                     case's fastest round (a shared machine drifts between fast and slow
#                     states over minutes; the best of interleaved rounds compares each peer
#                     at its least disturbed, rather than whichever state its turn fell in)
#   DIFFSIM_BIN=path  use this diffsim binary instead of building target/release/diffsim
#   SKIP_BUILD=1      do not run cargo for diffsim (use whatever binary exists)
#   SKIP_DIFFSOL=1    skip the diffsol (Rust crate) peer
#   SKIP_SPIRAL=1     skip the spiral neural-ODE gradient comparison (diffrax, torchdiffeq)
#   SPIRAL_ARGS="..." extra spiral_peers.py arguments (e.g. "--quick" or "--only diffrax")
#   SKIP_GRADIENTS=1  skip the loss+gradient comparison (gradient_peers.py: Lorenz, Robertson,
#                     Brusselator; diffsim CLI vs diffrax and torchdiffeq)
#   GRADIENT_ARGS="..." extra gradient_peers.py arguments (e.g. "--quick" or "--only lorenz,diffrax")
#   SKIP_STIFF=1      skip the stiff test-set work-precision benchmark (stiff_peers.py: HIRES,
#                     OREGO, POLLU, VDPOL, ROBER, Akzo Nobel, E5 at rtol 1e-4 .. 1e-12; diffsim
#                     CLI vs scipy Radau/BDF/LSODA and diffsol BDF/ESDIRK34/TR-BDF2)
#   STIFF_BUDGET=0.5  seconds of repeated solving per stiff run (one tolerance of one solver)
#   STIFF_ARGS="..."  extra stiff_peers.py arguments (e.g. "--problems hires,akzo")
#   SKIP_MLP=1        skip the MLP forward+backward comparison (mlp_peers.py for PyTorch;
#                     `cargo bench -p diffsim-examples --bench nn -- mlp_` for diffsim unless SKIP_BUILD=1)
#   PYTHON=python3    interpreter used to create the venv
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUDGET="${BUDGET:-2}"
ROUNDS="${ROUNDS:-3}"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv"
OUT="$HERE/results"
mkdir -p "$OUT"
RES="$OUT/latest.jsonl"
: > "$RES"
LOG="$OUT/latest.log"
: > "$LOG"

say() { echo "[peers] $*" >&2; }
T_START=$(date +%s)

# One thread everywhere, so that no peer gets the second core for free.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export XLA_FLAGS="${XLA_FLAGS:---xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1}"
export JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=2

# ---------------------------------------------------------------- Python peers
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV"
  "$PYTHON" -m venv "$VENV" || { say "cannot create venv"; exit 1; }
fi
say "installing pinned Python peers (requirements.txt)"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" >>"$LOG" 2>&1 \
  || { say "pip install failed (see $LOG)"; exit 1; }
if "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements-optional.txt" >>"$LOG" 2>&1; then
  say "SUNDIALS binding (scikit-sundae) installed"
else
  say "SUNDIALS binding did not install; continuing without CVODE"
fi

# ---------------------------------------------------------------- our CLI
BIN="${DIFFSIM_BIN:-$ROOT/target/release/diffsim}"
if [ -z "${DIFFSIM_BIN:-}" ] && [ -z "${SKIP_BUILD:-}" ]; then
  say "building diffsim CLI (cargo build --release -p diffsim-cli)"
  (cd "$ROOT" && cargo build --release -p diffsim-cli) >>"$LOG" 2>&1 \
    || say "diffsim build failed (see $LOG); ours = n/a"
fi
[ -x "$BIN" ] || say "no diffsim binary at $BIN; ours = n/a"

# ---------------------------------------------------------------- diffsol peer
DS_BIN="$HERE/diffsol-bench/target/release/diffsol-bench"
if [ -z "${SKIP_DIFFSOL:-}" ]; then
  say "building diffsol peer (first build takes ~2-3 min)"
  (cd "$HERE/diffsol-bench" && cargo build --release) >>"$LOG" 2>&1 \
    || say "diffsol-bench build failed (see $LOG)"
fi
T_BUILT=$(date +%s)

# ---------------------------------------------------------------- run
PY="$VENV/bin/python"
say "reference solutions (tight-tolerance scipy)"
"$PY" "$HERE/peers.py" --only reference >>"$RES" 2>>"$LOG"
for round in $(seq 1 "$ROUNDS"); do
  say "round $round of $ROUNDS: diffsim"
  "$PY" "$HERE/peers.py" --only diffsim --diffsim "$BIN" --budget "$BUDGET" >>"$RES" 2>>"$LOG"
  if [ -z "${SKIP_DIFFSOL:-}" ] && [ -x "$DS_BIN" ]; then
    say "round $round of $ROUNDS: diffsol"
    "$DS_BIN" --budget "$BUDGET" >>"$RES" 2>>"$LOG" || say "diffsol-bench failed (see $LOG)"
  fi
  for peer in cvode diffrax scipy; do
    say "round $round of $ROUNDS: $peer"
    "$PY" "$HERE/peers.py" --only "$peer" --budget "$BUDGET" >>"$RES" 2>>"$LOG"
  done
done
SP="$OUT/spiral.jsonl"
if [ -z "${SKIP_SPIRAL:-}" ]; then
  # The spiral neural ODE: diffrax and torchdiffeq first (they emit the shared data and
  # initial parameters, and diffrax's trained ones), then diffsim on the same numbers.
  say "spiral neural ODE gradients: diffrax, torchdiffeq (a few minutes; SKIP_SPIRAL=1 skips)"
  "$PY" "$HERE/spiral_peers.py" --budget "$BUDGET" ${SPIRAL_ARGS:-} > "$SP" 2>>"$LOG"
  say "spiral neural ODE gradients: diffsim"
  (cd "$ROOT" && cargo bench -q -p diffsim-examples --bench spiral_peers -- "$SP" "$BUDGET") >>"$SP" 2>>"$LOG" \
    || say "diffsim spiral_peers failed (see $LOG)"
fi
GR="$OUT/gradients.jsonl"
if [ -z "${SKIP_GRADIENTS:-}" ]; then
  # Each diffrax/torchdiffeq case runs in its own child process with time limits; cases
  # that cannot finish (torchdiffeq on stiff problems) are reported as n/a with the reason.
  say "loss+gradient: diffsim, diffrax, torchdiffeq (~10 min; SKIP_GRADIENTS=1 skips)"
  "$PY" "$HERE/gradient_peers.py" --diffsim "$BIN" --budget "$BUDGET" ${GRADIENT_ARGS:-} > "$GR" 2>>"$LOG"
fi
ST="$OUT/stiff.jsonl"
if [ -z "${SKIP_STIFF:-}" ]; then
  # Writes results/stiff.jsonl (raw runs) and results/stiff.md (the work-precision table).
  say "stiff test set work-precision: diffsim, diffsol, scipy (~10 min; SKIP_STIFF=1 skips)"
  STIFF_PEERS="diffsim,diffsol,scipy"
  [ -n "${SKIP_DIFFSOL:-}" ] && STIFF_PEERS="diffsim,scipy"
  "$PY" "$HERE/stiff_peers.py" --diffsim "$BIN" --diffsol "$DS_BIN" --only "$STIFF_PEERS" \
    --budget "${STIFF_BUDGET:-0.5}" --out "$ST" --md "$OUT/stiff.md" ${STIFF_ARGS:-} > /dev/null 2>>"$LOG" \
    || say "stiff_peers.py failed (see $LOG)"
fi
ML="$OUT/mlp.jsonl"
CRIT="$OUT/criterion"
if [ -z "${SKIP_MLP:-}" ]; then
  say "MLP forward+backward: PyTorch, 1 thread (SKIP_MLP=1 skips)"
  "$PY" "$HERE/mlp_peers.py" --budget 1 --threads 1 > "$ML" 2>>"$LOG"
  if [ -z "${SKIP_BUILD:-}" ]; then
    # diffsim's side is its criterion benchmark of the same networks; its medians land in
    # results/criterion and `mlp_peers.py --table --criterion` reads them.
    say "MLP forward+backward: diffsim (cargo bench -p diffsim-examples --bench nn -- mlp_)"
    (cd "$ROOT" && CRITERION_HOME="$CRIT" cargo bench -p diffsim-examples --bench nn -- mlp_) >>"$LOG" 2>&1 \
      || say "diffsim nn bench failed (see $LOG)"
  fi
fi
T_END=$(date +%s)

"$PY" "$HERE/table.py" "$RES" | tee "$OUT/latest.md"
if [ -s "$SP" ] && [ -z "${SKIP_SPIRAL:-}" ]; then
  echo
  "$PY" "$HERE/spiral_peers.py" --table "$SP" | tee "$OUT/spiral.md"
fi
if [ -s "$GR" ] && [ -z "${SKIP_GRADIENTS:-}" ]; then
  echo
  "$PY" "$HERE/gradient_peers.py" --table "$GR" | tee "$OUT/gradients.md"
fi
if [ -s "$OUT/stiff.md" ] && [ -z "${SKIP_STIFF:-}" ]; then
  echo
  cat "$OUT/stiff.md"
fi
if [ -s "$ML" ] && [ -z "${SKIP_MLP:-}" ]; then
  echo
  "$PY" "$HERE/mlp_peers.py" --table "$ML" --criterion "$CRIT" | tee "$OUT/mlp.md"
fi
echo
echo "builds/installs: $((T_BUILT - T_START)) s; benchmark runs: $((T_END - T_BUILT)) s;" \
     "machine: $(getconf _NPROCESSORS_ONLN) cores, $(uname -m); raw results: ${RES#$ROOT/}; log: ${LOG#$ROOT/}"
grep -h "^peers.py\|^mlp_peers.py\|^stiff_peers.py\|failed\|error" "$LOG" | grep -v "^\s*Compiling" | sort -u | head -20 >&2 || true
