#!/usr/bin/env bash
# db-diff side by side with SQLite's sqldiff (Debian sqlite3-tools), both measured in this
# run: a 1,000,000-row rowid table plus a 100,000-row WITHOUT ROWID table with about 1% of
# rows updated, deleted or inserted. Full SQL, --summary, --schema and --changeset modes:
# wall time and peak resident memory (GNU time), ratios roost/sqldiff; each mode runs
# $RUNS times (default 3), the two tools alternately, and the median run of each is shown. roost's SQL is then
# applied with the sqlite3 shell and checked against B with sqldiff (must print nothing), and
# its changeset must hold as many bytes as sqldiff's (the same changes; the tests compare
# them change by change and apply them).
# Then the same at ten times the size (10,000,000 + 1,000,000 rows, the same 1%): how
# time and memory grow with the tables (`SIZES="1000000"` runs the first size alone).
# Run from the repo root: `bash host/benches/db_diff_vs_sqldiff.sh` (also part of `make bench`).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
command -v sqldiff >/dev/null && command -v sqlite3 >/dev/null && [ -x /usr/bin/time ] ||
  { apt-get update -qq && apt-get install -y -qq sqlite3 sqlite3-tools time; }
source host/benches/results.sh
bench_results db_diff_vs_sqldiff "sqldiff $(sqlite3 --version | cut -d' ' -f1)"
cargo build -q --release -p roost
bin=$root/target/release/roost
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
(cd "$dir" && "$bin" init >/dev/null)

measure() {  # label, command…: prints "seconds peak_kib" and keeps stdout in $dir/out.<label>
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$dir/time.$label" "$@" >"$dir/out.$label"
  cat "$dir/time.$label"
}
median() { sort -n | sed -n "$(( (${RUNS:-3} + 1) / 2 ))p"; }  # of $RUNS "seconds peak_kib" lines
ratio() { if [ "$(echo "$2 > 0" | bc)" = 1 ]; then echo "scale=2; $1 / $2" | bc; else echo "n/a"; fi; }

# The first run compiles db-diff.wasm into this config's compile cache (data/cache), once;
# every later run, like every run of an installed roost, loads it from there. Shown apart.
sqlite3 "$dir/empty.db" 'CREATE TABLE t(x)'
read -r c_sec c_kib < <(cd "$dir" && measure roost-cold "$bin" invoke db-diff diff empty.db empty.db --schema)
echo "one-off: first roost run compiling the plugin into the cache: ${c_sec} s, $((c_kib / 1024)) MiB peak"

build() {  # rows: A with ROWS + ROWS/10 rows, B with about 1% of them changed
  local rows=$1 kv=$(($1 / 10))
  rm -f "$dir/a.db" "$dir/b.db"
  sqlite3 "$dir/a.db" <<SQL
CREATE TABLE big(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO big SELECT i, i * 7 % 1000, 'row ' || i, i * 0.5 FROM n;
CREATE TABLE kv(k TEXT, g INTEGER, v BLOB, PRIMARY KEY (k, g)) WITHOUT ROWID;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $kv)
INSERT INTO kv SELECT 'key' || (i % 5000), i, randomblob(16) FROM n;
SQL
  cp "$dir/a.db" "$dir/b.db"
  sqlite3 "$dir/b.db" <<SQL
UPDATE big SET b = b || ' changed', c = c + 0.25 WHERE id % 250 = 0;
DELETE FROM big WHERE id % 333 = 1;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows * 3 / 1000)
INSERT INTO big SELECT $rows + i, i, 'new ' || i, i / 3.0 FROM n;
UPDATE kv SET v = randomblob(16) WHERE g % 250 = 0;
DELETE FROM kv WHERE g % 333 = 1;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $kv * 3 / 1000)
INSERT INTO kv SELECT 'new' || i, i, randomblob(8) FROM n;
SQL
}

size() {  # mode, tool: lines of output, or bytes of the changeset file
  if [ "$1" = changeset ]; then echo "$(wc -c <"$dir/cs.$2.bin")B"; else wc -l <"$dir/out.$2-$1"; fi
}

compare() {  # rows: every mode, both tools, then roost's output checked
  printf "%-10s %-10s %-8s %10s %10s %8s %8s\n" rows mode tool seconds "peak MiB" lines "x sqldiff"
  for mode in full summary schema changeset; do
    case $mode in
      full) s_flags=() r_flags=() ;;
      summary) s_flags=(--summary) r_flags=(--summary) ;;
      schema) s_flags=(--schema) r_flags=(--schema) ;;
      changeset) s_flags=(--changeset "$dir/cs.sqldiff.bin") r_flags=(--changeset cs.roost.bin) ;;
    esac
    : >"$dir/runs.sqldiff"; : >"$dir/runs.roost"
    for _ in $(seq "${RUNS:-3}"); do
      measure "sqldiff-$mode" sqldiff "${s_flags[@]}" "$dir/a.db" "$dir/b.db" >>"$dir/runs.sqldiff"
      (cd "$dir" && measure "roost-$mode" "$bin" invoke db-diff diff a.db b.db "${r_flags[@]}") >>"$dir/runs.roost"
    done
    read -r s_sec s_kib < <(median <"$dir/runs.sqldiff")
    read -r r_sec r_kib < <(median <"$dir/runs.roost")
    printf "%-10s %-10s %-8s %10s %10s %8s %8s\n" "$1" "$mode" sqldiff "$s_sec" "$((s_kib / 1024))" "$(size "$mode" sqldiff)" 1
    printf "%-10s %-10s %-8s %10s %10s %8s %8s\n" "$1" "$mode" roost "$r_sec" "$((r_kib / 1024))" "$(size "$mode" roost)" \
      "$(ratio "$r_sec" "$s_sec")"
  done
  echo "== correctness: roost's SQL applied with sqlite3 -bail to a copy of A, then sqldiff copy B"
  cp "$dir/a.db" "$dir/applied.db"
  sqlite3 -bail "$dir/applied.db" <"$dir/out.roost-full"
  left=$(sqldiff "$dir/applied.db" "$dir/b.db" | wc -l)
  echo "sqldiff lines left after applying roost's diff: $left"
  [ "$left" -eq 0 ]
  echo "changeset bytes: roost $(wc -c <"$dir/cs.roost.bin"), sqldiff $(wc -c <"$dir/cs.sqldiff.bin")"
  [ "$(wc -c <"$dir/cs.roost.bin")" -eq "$(wc -c <"$dir/cs.sqldiff.bin")" ]
}

for rows in ${SIZES:-1000000 10000000}; do
  echo "== A: $rows + $((rows / 10)) rows; B: about 1% of them changed"
  build "$rows"
  compare "$rows"
done
