package agentapi

// SnapshotStreamed is what `kubectl-etcd-agent snapshot` prints on stderr
// once the snapshot is out: the plugin checks the bytes it got against it.
type SnapshotStreamed struct {
	// Read is the snapshot's size as etcd sent it; Written the bytes on
	// stdout (smaller, compressed).
	Read    int64 `json:"read"`
	Written int64 `json:"written"`
	// Version is etcd's storage version of the snapshot ("" before 3.6).
	Version     string `json:"version,omitempty"`
	Compression string `json:"compression,omitempty"`
	Millis      int64  `json:"millis"`
}

// SnapshotListening is the line `kubectl-etcd-agent snapshot --listen`
// prints on stderr once it accepts the connection the snapshot goes to.
type SnapshotListening struct {
	Listening string `json:"listening"`
}
