#!/bin/sh
# Runs unit test binaries, optionally under valgrind (VALGRIND=1), and fails if any fails
# or valgrind reports a leak or memory error.
set -u
status=0
for t in "$@"; do
    if [ "${VALGRIND:-0}" = 1 ]; then
        valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 "$t" || status=1
    else
        "$t" || status=1
    fi
done
exit $status
