// Command typecheck type-checks packages and everything they import, from
// source, for other platforms, the way the compiler would but without
// compiling: hack/release/check.sh runs it for the platforms its CI-sized
// build leaves out.
//
//	go run -C hack/release/typecheck . -dir "$PWD" -platforms darwin/arm64,windows/amd64 ./cmd/... ./pkg/...
//
// Cold, a platform takes some 25 CPU-seconds where go build, which compiles
// every dependency for it, takes some 400, and go vet more. A module of its
// own, so that golang.org/x/tools stays out of the plugin's go.mod.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/tools/go/packages"
)

func main() {
	dir := flag.String("dir", ".", "the module whose packages the patterns name")
	platforms := flag.String("platforms", "", "comma-separated GOOS/GOARCH pairs to check, with CGO_ENABLED=0 as in the release builds")
	flag.Parse()
	failed := false
	for _, platform := range strings.Split(*platforms, ",") {
		goos, goarch, ok := strings.Cut(platform, "/")
		if !ok {
			fmt.Fprintf(os.Stderr, "typecheck: -platforms: %q is not GOOS/GOARCH\n", platform)
			os.Exit(2)
		}
		cfg := &packages.Config{
			Mode: packages.LoadAllSyntax,
			Dir:  *dir,
			Env:  append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0"),
		}
		pkgs, err := packages.Load(cfg, flag.Args()...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "typecheck: %s: %v\n", platform, err)
			os.Exit(1)
		}
		if packages.PrintErrors(pkgs) > 0 {
			fmt.Fprintf(os.Stderr, "typecheck: %s: the errors above\n", platform)
			failed = true
			continue
		}
		n := 0
		packages.Visit(pkgs, nil, func(*packages.Package) { n++ })
		fmt.Printf("typecheck: %s: %d packages\n", platform, n)
	}
	if failed {
		os.Exit(1)
	}
}
