package main

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadmeReferenceUpToDate is the drift check: README.md's command
// reference must be what the cobra tree generates.
func TestReadmeReferenceUpToDate(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := section(string(doc))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	want, err := reference()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README.md's command reference is out of date; run %q from the repository root (-want +got):\n%s", regenerate, diff)
	}
}

func TestSplice(t *testing.T) {
	tests := []struct {
		name, doc, want string
		wantErr         bool
	}{
		{
			name: "replaces the section and keeps the rest",
			doc:  "intro\n" + beginMarker + "\nold\n" + endMarker + "\noutro\n",
			want: "intro\n" + beginMarker + "\nnew\n" + endMarker + "\noutro\n",
		},
		{
			name: "fills an empty section",
			doc:  beginMarker + "\n" + endMarker,
			want: beginMarker + "\nnew\n" + endMarker,
		},
		{name: "no markers", doc: "intro\n", wantErr: true},
		{name: "markers reversed", doc: endMarker + beginMarker, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splice(tt.doc, "new\n")
			if (err != nil) != tt.wantErr {
				t.Fatalf("splice() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("splice() = %q, want %q", got, tt.want)
			}
		})
	}
}
