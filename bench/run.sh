#!/usr/bin/env bash
# Runs every benchmark of `make bench` and rewrites the generated parts of
# docs/benchmarks.md and the plots in docs/benchmarks/.
#
#   bash bench/run.sh                  # full run: three runs of every case
#   BENCH_QUICK=1 bash bench/run.sh    # smoke test: one short run of each
#
# Peers are built from the Go module proxy into a temporary directory and
# deleted afterwards. All load goes to 127.0.0.1, and every run is bounded
# in time. BENCH_KEEP=1 keeps the temporary directory with the node logs.
# BENCH_DOC names another page to write, with the plots and raw results in
# a benchmarks/ directory beside it, such as for a smoke test that should
# leave docs/ alone.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
QUICK=${BENCH_QUICK:-0}
DOC=${BENCH_DOC:-docs/benchmarks.md}
IMAGES=$(dirname "$DOC")/benchmarks
PEBBLE_VERSION=v2.10.3
CFSSL_VERSIONS="v1.7.1 v1.6.5"

tmp=$(mktemp -d /tmp/anchor-bench.XXXXXX)
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  trap 'echo "bench: kept $tmp"' EXIT
else
  trap 'rm -rf "$tmp"' EXIT
fi
meta=$tmp/meta
mkdir -p "$meta" "$tmp/peers" "$tmp/profiles"
results=$tmp/results.jsonl
: >"$results"
date -u '+%Y-%m-%d %H:%M UTC' >"$meta/date.txt"

# run logs a command into commands.txt, quoted for a shell, and runs it.
run() {
  local words=() a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=,+@-]+$ ]]; then
      words+=("$a")
    else
      words+=("'$a'")
    fi
  done
  note "${words[*]}"
  "$@"
}

# note logs a command line into commands.txt, with $TMP for the temporary
# directory.
note() {
  echo "$*" | sed "s|$tmp|\$TMP|g" >>"$meta/commands.txt"
}

# failed lists the phases that failed; the others still run and report.
failed=()

# phase notes the 1-minute load average as a phase starts.
phase() {
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "$1 $load" >>"$meta/loads.txt"
  echo "bench: $1 (load average $load)"
}

install_deps() {
  bash scripts/install-deps.sh
  if ! command -v gnuplot >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "bench: installing gnuplot-nox for the plots"
    $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null ||
      echo "bench: gnuplot-nox not installed; the page keeps its old plots" >&2
  fi
}

# build_peers installs Pebble and cfssl from the Go module proxy into
# $tmp/peers. cfssl v1.7.1 needs a newer Go than some machines have; the
# newest version that builds is used and named on the page.
build_peers() {
  note "(cd $tmp && GOFLAGS=-mod=mod GOBIN=$tmp/peers go install" \
    "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION)"
  (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp/peers" \
    "$GO" install "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION")
  echo "Pebble $PEBBLE_VERSION" >>"$meta/versions.txt"
  for v in $CFSSL_VERSIONS; do
    note "(cd $tmp && GOFLAGS=-mod=mod GOBIN=$tmp/peers go install" \
      "github.com/cloudflare/cfssl/cmd/cfssl@$v)"
    if (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp/peers" \
      "$GO" install "github.com/cloudflare/cfssl/cmd/cfssl@$v"); then
      echo "cfssl $v" >>"$meta/versions.txt"
      return
    fi
    echo "bench: cfssl $v did not build here; trying the next version" >&2
    echo "cfssl $v did not build with $($GO env GOVERSION)" >>"$meta/versions.txt"
  done
}

install_deps
phase "build"
run "$GO" build -o "$tmp/anchor-node" ./cmd/anchor-node
run "$GO" build -o "$tmp/anchorbench" ./bench/cmd/anchorbench
build_peers
echo "$(openssl version | cut -d' ' -f1-2)" >>"$meta/versions.txt"
echo "$($GO env GOVERSION)" >>"$meta/versions.txt"

runs=3
acme_conc=16,64
ocsp_conns=1,16,64,256
ocsp_certs=300
crl_sizes='^(10000|100000|1000000)$'
if [ "$QUICK" = 1 ]; then
  runs=1
  acme_conc=16
  ocsp_conns=1,64
  ocsp_certs=40
  crl_sizes='^(10000)$'
fi
bench=("$tmp/anchorbench")
common=(-out "$results" -work "$tmp/work" -node-bin "$tmp/anchor-node" -runs "$runs")
cfssl=""
[ -x "$tmp/peers/cfssl" ] && cfssl="$tmp/peers/cfssl"

phase "acme"
run "${bench[@]}" acme "${common[@]}" -pebble "$tmp/peers/pebble" -conc "$acme_conc" ||
  failed+=(acme)
phase "ocsp"
run "${bench[@]}" ocsp "${common[@]}" -cfssl "$cfssl" -conns "$ocsp_conns" \
  -certs "$ocsp_certs" || failed+=(ocsp)
phase "failover"
run "${bench[@]}" failover "${common[@]}" || failed+=(failover)

phase "in-process"
note "BENCH_OUT=$results BENCH_RUNS=$runs BENCH_PROFILE_DIR=$tmp/profiles" \
  "$GO test -tags bench -count=1 -timeout 20m -run '^TestBench' -v ./bench/inproc/"
BENCH_OUT=$results BENCH_RUNS=$runs BENCH_PROFILE_DIR=$tmp/profiles \
  "$GO" test -tags bench -count=1 -timeout 20m -run '^TestBench' -v ./bench/inproc/ |
  grep -v '^=== RUN' || failed+=(in-process)
# The page shows, per profile, the top functions by own CPU time and then
# Anchor's functions by cumulative time.
for p in ocsp acme; do
  if [ -s "$tmp/profiles/$p.pprof" ]; then
    {
      "$GO" tool pprof -top -nodecount=12 "$tmp/profiles/$p.pprof" 2>/dev/null | sed -n '/flat%/,$p'
      echo
      "$GO" tool pprof -top -cum -show='^anchor/' -nodecount=14 "$tmp/profiles/$p.pprof" 2>/dev/null |
        sed -n '/flat%/,$p'
    } >"$meta/$p.top" || true
  fi
done

phase "crl"
run "$GO" test -run '^$' -bench "BenchmarkCRLGeneration/sign/$crl_sizes" -benchtime=1x \
  -count="$runs" -timeout 20m ./crl/ | tee "$tmp/crl.txt" || failed+=(crl)
"${bench[@]}" gobench -out "$results" -bench crl -prefix BenchmarkCRLGeneration/ \
  <"$tmp/crl.txt" || failed+=(crl-results)

phase "report"
mkdir -p "$IMAGES"
report=(-results "$results" -doc "$DOC" -images "$IMAGES" -meta "$meta")
[ "$QUICK" = 1 ] && report+=(-quick)
"${bench[@]}" report "${report[@]}"
cp "$results" "$IMAGES/results.jsonl"
echo "bench: wrote $DOC, $IMAGES/*.png and $IMAGES/results.jsonl"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: these phases failed, see the output above: ${failed[*]}" >&2
  exit 1
fi
