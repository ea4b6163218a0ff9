// Package printers renders command results as kubectl does: a plain table
// (or a wider one), JSON or YAML. Table builders are pure functions that
// return a header and rows, as etcdctl's printers do.
package printers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"sigs.k8s.io/yaml"
)

// Formats accepted by -o.
const (
	Table = "table"
	Wide  = "wide"
	JSON  = "json"
	YAML  = "yaml"
)

// ValidateFormat rejects unknown -o values with the list of good ones.
func ValidateFormat(f string) error {
	switch f {
	case "", Table, Wide, JSON, YAML:
		return nil
	}
	return fmt.Errorf("unknown output format %q: use one of table, wide, json, yaml", f)
}

// TableFunc builds a table; wide asks for the extra columns.
type TableFunc func(wide bool) (header []string, rows [][]string)

// Print writes v in format. Tables come from table; json and yaml from v.
func Print(out io.Writer, format string, v any, table TableFunc) error {
	switch format {
	case JSON:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "    ")
		return enc.Encode(v)
	case YAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	default:
		h, rows := table(format == Wide)
		return RenderTable(out, h, rows)
	}
}

// RenderTable prints a borderless, left-aligned table like kubectl get.
func RenderTable(out io.Writer, header []string, rows [][]string) error {
	var buf bytes.Buffer
	if err := renderTable(&buf, header, rows); err != nil {
		return err
	}
	// The renderer pads the last column too; kubectl does not.
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if trimmed := strings.TrimRight(line, " \n"); trimmed != "" || line != "" {
			if _, err := fmt.Fprintln(out, trimmed); err != nil {
				return err
			}
		}
	}
	return nil
}

func renderTable(out io.Writer, header []string, rows [][]string) error {
	t := tablewriter.NewTable(out,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithTrimSpace(tw.Off),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: "   ", Overwrite: true}),
	)
	t.Header(toAny(header)...)
	for _, r := range rows {
		if err := t.Append(toAny(r)...); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
