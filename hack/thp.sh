# shellcheck shell=bash
# Transparent huge pages for every process while a script runs (sourced by
# hack/test.sh and hack/try.sh).
#
# Debian's default, "madvise", gives huge pages only to memory a process
# asks for with madvise(2), which Go's runtime no longer does: every
# compiler process faults its heap in 4 KiB at a time, and on this kind of
# machine (a VM) the faults cost more than the compile. Measured on etcd
# 3.7's cold build (2 cores, -p 2): 73 CPU-seconds (60 user, 14 system) and
# 39 s with "always", against 103 (76 user, 26 system) and 56 s with
# "madvise"; a cold hack/test.sh is bound by its CPU.
#
# thp_always sets "always" when it can (root, a kernel with THP) and it is
# not set already, and says so; thp_restore puts back what it found.
# HC_THP=keep leaves the setting alone.
THP_FILE=/sys/kernel/mm/transparent_hugepage/enabled
thp_was=""

thp_always() {
  [ "${HC_THP:-always}" != keep ] || return 0
  [ -w "$THP_FILE" ] || return 0
  grep -q '\[always\]' "$THP_FILE" && return 0
  thp_was=$(sed -E 's/.*\[([a-z]+)\].*/\1/' "$THP_FILE")
  if echo always >"$THP_FILE" 2>/dev/null; then
    echo "$(basename "$0"): transparent huge pages set to \"always\" until the end of this run (they were \"$thp_was\"; HC_THP=keep leaves them): a cold build needs a third less CPU" >&2
  else
    thp_was=""
  fi
}

thp_restore() {
  [ -n "$thp_was" ] || return 0
  echo "$thp_was" >"$THP_FILE" 2>/dev/null || true
  thp_was=""
}
