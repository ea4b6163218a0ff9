// Command gen-reference writes the command reference in README.md from the
// cobra tree, between the BEGIN and END GENERATED REFERENCE markers:
//
//	go run ./hack/gen-reference            # rewrite README.md
//	go run ./hack/gen-reference -stdout    # print the section only
//
// main_test.go fails when README.md and the code disagree.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/plugin"
)

const (
	beginMarker = "<!-- BEGIN GENERATED REFERENCE -->"
	endMarker   = "<!-- END GENERATED REFERENCE -->"
	regenerate  = "go run ./hack/gen-reference"
)

func main() {
	readme := flag.String("readme", "README.md", "README to update in place")
	stdout := flag.Bool("stdout", false, "print the generated section instead of writing the README")
	flag.Parse()
	if err := run(*readme, *stdout); err != nil {
		fmt.Fprintf(os.Stderr, "gen-reference: %v\n", err)
		os.Exit(1)
	}
}

func run(readme string, stdout bool) error {
	ref, err := reference()
	if err != nil {
		return err
	}
	if stdout {
		_, err := os.Stdout.WriteString(ref)
		return err
	}
	old, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	updated, err := splice(string(old), ref)
	if err != nil {
		return fmt.Errorf("%s: %w", readme, err)
	}
	return os.WriteFile(readme, []byte(updated), 0o644)
}

// reference renders the section for the plugin's command tree. Defaults
// that depend on the environment are normalised so that every machine
// generates the same text.
func reference() (string, error) {
	if err := os.Unsetenv(plugin.ImageEnv); err != nil {
		return "", err
	}
	root := plugin.NewCmdEtcd(genericiooptions.NewTestIOStreamsDiscard())
	var b bytes.Buffer
	writeCommand(&b, root)
	return strings.TrimRight(b.String(), "\n") + "\n", nil
}

// splice replaces what lies between the markers of doc with ref.
func splice(doc, ref string) (string, error) {
	begin := strings.Index(doc, beginMarker)
	end := strings.Index(doc, endMarker)
	if begin < 0 || end < begin {
		return "", fmt.Errorf("markers %q and %q not found in order", beginMarker, endMarker)
	}
	head := doc[:begin+len(beginMarker)]
	return head + "\n" + ref + doc[end:], nil
}

// section returns what lies between the markers of doc.
func section(doc string) (string, error) {
	begin := strings.Index(doc, beginMarker)
	end := strings.Index(doc, endMarker)
	if begin < 0 || end < begin {
		return "", fmt.Errorf("markers %q and %q not found in order", beginMarker, endMarker)
	}
	return strings.TrimPrefix(doc[begin+len(beginMarker):end], "\n"), nil
}

func writeCommand(b *bytes.Buffer, cmd *cobra.Command) {
	if cmd.Hidden || cmd.Name() == "help" {
		return
	}
	fmt.Fprintf(b, "### %s\n\n%s\n\n", cmd.CommandPath(), cmd.Short)
	fmt.Fprintf(b, "```\n%s\n```\n\n", cmd.UseLine())
	if len(cmd.Aliases) > 0 {
		fmt.Fprintf(b, "Aliases: %s.\n\n", codeList(cmd.Aliases))
	}
	if cmd.Example != "" {
		fmt.Fprintf(b, "Examples:\n\n```sh\n%s\n```\n\n", dedent(cmd.Example))
	}
	writeFlags(b, cmd.LocalFlags(), !cmd.HasParent())
	if cmd.HasParent() && cmd.HasAvailableInheritedFlags() {
		b.WriteString("Also takes the global flags of `kubectl etcd`.\n\n")
	}
	subs := cmd.Commands()
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
	for _, sub := range subs {
		writeCommand(b, sub)
	}
}

func writeFlags(b *bytes.Buffer, flags *pflag.FlagSet, global bool) {
	var rows []*pflag.Flag
	flags.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Name != "help" {
			rows = append(rows, f)
		}
	})
	if len(rows) == 0 {
		return
	}
	if global {
		b.WriteString("Global flags, taken by every command:\n\n")
	}
	b.WriteString("| flag | default | description |\n| --- | --- | --- |\n")
	for _, f := range rows {
		name := "--" + f.Name
		if f.Shorthand != "" {
			name = "-" + f.Shorthand + ", " + name
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", name, defaultValue(f), cell(f.Usage))
	}
	b.WriteString("\n")
}

func defaultValue(f *pflag.Flag) string {
	v := f.DefValue
	if home, err := os.UserHomeDir(); err == nil && home != "" && strings.HasPrefix(v, home) {
		v = "$HOME" + filepath.ToSlash(strings.TrimPrefix(v, home))
	}
	switch v {
	case "", "[]":
		return ""
	}
	return "`" + cell(v) + "`"
}

// cell makes text safe inside a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func codeList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = "`" + s + "`"
	}
	return strings.Join(quoted, ", ")
}

// dedent removes the indentation templates.Examples adds for the terminal.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "  ")
	}
	return strings.Join(lines, "\n")
}
