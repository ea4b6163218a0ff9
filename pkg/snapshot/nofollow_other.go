//go:build !unix

package snapshot

// noFollow: O_EXCL alone refuses an existing name, a link included.
const noFollow = 0
