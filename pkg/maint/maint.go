// Package maint holds the on-call maintenance operations: defragmenting
// members in a safe order, listing and disarming alarms, moving the
// leader and compacting. Each operation takes a plain config and a
// transport (etcd.Transport), so that commands stay thin and tests use a recording fake.
package maint

import "github.com/kubectl-etcd/kubectl-etcd/pkg/change"

// Options are what every operation shares.
type Options = change.Options

// alarmNoSpace is the alarm a full database raises; maintenance is what
// clears it, so it does not stop maintenance.
const alarmNoSpace = "NOSPACE"
