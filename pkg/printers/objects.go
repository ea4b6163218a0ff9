package printers

import (
	"fmt"
	"io"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/decode"
)

// ObjectPrinter prints the values `kubectl etcd get` reads, one key at a
// time, so that a long prefix streams. YAML is a multi-document stream,
// each document headed by its key (and, for a value shown in part or not
// at all, the reason) in comments; JSON is a stream of objects, one per
// key, that jq reads as it comes, with the reasons on ErrOut.
type ObjectPrinter struct {
	Out, ErrOut io.Writer
	// Format is YAML or JSON.
	Format string
}

// Print prints one key's value.
func (p *ObjectPrinter) Print(key string, modRevision int64, v *decode.Value) error {
	if p.Format == JSON {
		return p.printJSON(key, v)
	}
	return p.printYAML(key, modRevision, v)
}

func (p *ObjectPrinter) printYAML(key string, modRevision int64, v *decode.Value) error {
	var b strings.Builder
	fmt.Fprintf(&b, "---\n# %s (%s", key, v.Encoding)
	if modRevision > 0 {
		fmt.Fprintf(&b, ", revision %d", modRevision)
	}
	b.WriteString(")\n")
	if v.Note != "" {
		b.WriteString("# " + cell(v.Note) + "\n")
	}
	if v.IsObject() {
		y, err := v.YAML()
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		b.Write(y)
	}
	_, err := io.WriteString(p.Out, b.String())
	return err
}

func (p *ObjectPrinter) printJSON(key string, v *decode.Value) error {
	if v.Note != "" {
		verb := ""
		if !v.IsObject() {
			verb = ": not printed"
		}
		fmt.Fprintf(p.ErrOut, "%s: %s%s\n", key, cell(v.Note), verb)
	}
	if !v.IsObject() {
		return nil
	}
	j, err := v.IndentedJSON()
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	_, err = p.Out.Write(j)
	return err
}

// EntryPrinter prints what `kubectl etcd get` reads as it asks: the
// decoded objects (ObjectPrinter), the keys alone, or the raw bytes.
type EntryPrinter struct {
	Objects ObjectPrinter
	// KeysOnly prints one key a line.
	KeysOnly bool
	// Raw prints the values as stored; with Single, the value alone
	// (for `> file` or a hex dump), else etcdctl's key and value lines.
	Raw    bool
	Single bool
}

// Print prints one key.
func (p *EntryPrinter) Print(key, value []byte, modRevision int64) error {
	out := p.Objects.Out
	var err error
	switch {
	case p.KeysOnly:
		_, err = fmt.Fprintf(out, "%s\n", key)
	case p.Raw && p.Single:
		_, err = out.Write(value)
	case p.Raw:
		_, err = fmt.Fprintf(out, "%s\n%s\n", key, value)
	default:
		err = p.Objects.Print(string(key), modRevision, decode.Decode(value))
	}
	return err
}
