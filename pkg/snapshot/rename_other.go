//go:build !linux

package snapshot

// renameNoReplace moves from to to, failing with fs.ErrExist rather than
// replacing an existing to: a hard link cannot replace a name.
func renameNoReplace(from, to string) error { return linkUnlink(from, to) }
