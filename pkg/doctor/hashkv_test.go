package doctor

import "testing"

// TestHashKVAcrossCompactions: hashes differing at one compacted
// revision fail; hashes from different compacted revisions are not
// comparable, and say so rather than fail.
func TestHashKVAcrossCompactions(t *testing.T) {
	const id = "consistency.hashkv"
	runCases(t, "3.6.8", []ruleCase{
		{name: "equal", id: id, want: map[string]Severity{"cluster": OK}, found: "3 members hash to 0000abcd (compacted at 4000) at revision 5000"},
		{name: "one member", id: id, edit: func(f *Facts) { f.Members = f.Members[:1] }, want: map[string]Severity{"cluster": OK},
			found: "cp1 hashes to 0000abcd (compacted at 4000) at revision 5000 (no other member to compare with)"},
		{name: "diverged", id: id, edit: func(f *Facts) { f.Members[1].Hash.Hash = 0xdead }, want: map[string]Severity{"cluster": Fail},
			found: "hashes differ at revision 5000: cp1, cp3: 0000abcd (compacted at 4000); cp2: 0000dead (compacted at 4000)"},
		{name: "a compaction raced the hashes", id: id, edit: func(f *Facts) { f.Members[2].Hash.Hash, f.Members[2].Hash.CompactRevision = 0xbeef, 4500 },
			want: map[string]Severity{"cluster": NotChecked}, found: "a compaction ran while the members were hashed at revision 5000, twice; run check again"},
	})
}
