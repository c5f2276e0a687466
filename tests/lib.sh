# tests/lib.sh: what the test scripts share (sourced, not run). A script counts its failures in
# $failures and exits with it at the end; fail says what went wrong on stderr.
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect STATUS "what" REGEX CMD...: CMD exits with STATUS and its output matches REGEX.
expect() {
    local status=$1 what=$2 regex=$3
    shift 3
    "$@" > out.txt 2>&1
    local got=$?
    if [ "$got" != "$status" ]; then
        fail "$what: exit status $got, expected $status"
        cat out.txt >&2
    elif ! grep -Eq -- "$regex" out.txt; then
        fail "$what: output does not match '$regex':"
        cat out.txt >&2
    fi
}
