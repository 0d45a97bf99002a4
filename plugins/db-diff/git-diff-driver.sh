#!/bin/sh
# git diff driver for SQLite databases, backed by roost's db-diff plugin.
#
#   .gitattributes:   *.db diff=sqlite
#   git config diff.sqlite.command /path/to/git-diff-driver.sh
#
# git calls a diff.<driver>.command with 7 arguments:
#   path old-file old-hex old-mode new-file new-hex new-mode
# and prints nothing itself, so this script prints a header line and the SQL that turns
# the old database into the new one. An added or deleted file comes as /dev/null: it is
# compared with an empty database (a 0-byte file is one). Set ROOST to the roost binary
# (default: `roost` on PATH) and ROOST_CONFIG to its config file. No grant is needed:
# `roost invoke` lets the plugin read the files named on its command line, for that run.
set -u

if [ "$#" -ne 7 ]; then
    echo "usage: $0 path old-file old-hex old-mode new-file new-hex new-mode (a git diff.<driver>.command)" >&2
    exit 2
fi

path=$1
old=$2
new=$5
roost=${ROOST:-roost}
empty=

cleanup() {
    if [ -n "$empty" ]; then
        rm -f "$empty"
    fi
}
trap cleanup EXIT INT TERM

if [ "$old" = /dev/null ] || [ "$new" = /dev/null ]; then
    empty=$(mktemp "${TMPDIR:-/tmp}/roost-empty-XXXXXX") || exit 2
    [ "$old" = /dev/null ] && old=$empty
    [ "$new" = /dev/null ] && new=$empty
fi

echo "-- db-diff: $path"
"$roost" invoke db-diff diff "$old" "$new"
